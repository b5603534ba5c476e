#pragma once
// DeadLetterQueue: list, show, replay, remove and purge the messages the
// JetStream transport parked in its dead-letter stream (<PREFIX>_DLQ;
// headers: docs/wire-format.md, "Dead letters"; replay rules:
// docs/operations.md). The operator CLI (`catga dlq`) is built on it.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catga/nats/connection.hpp"
#include "catga/nats/options.hpp"
#include "catga/result.hpp"

namespace catga::nats {

// One message of the dead-letter stream, copied out of it.
struct DeadLetter {
  std::uint64_t sequence = 0;  // in the dead-letter stream
  std::string subject;         // <prefix>.dlq.<Type>
  std::string type;            // from the subject, else the Catga-Type header
  std::int64_t time_ns = 0;    // when it was stored (Unix ns)
  std::vector<std::pair<std::string, std::string>> headers;  // in stored order
  std::string body;

  // The first value of header `name` (Catga-Error, Catga-Deliveries, ...).
  std::optional<std::string_view> header(std::string_view name) const;
  std::string header_or(std::string_view name, std::string_view fallback = "") const;
};

// What became of one replayed dead letter.
struct ReplayOutcome {
  std::uint64_t dead_letter_seq = 0;
  std::string subject;      // where it was published
  std::string message_id;   // Nats-Msg-Id of the copy (replay_message_id)
  std::string original_id;  // Catga-Original-Msg-Id (what consumers see as the message id)
  std::uint64_t stream_seq = 0;  // in the events stream
  bool duplicate = false;   // this dead letter was already replayed within the duplicate window
  bool removed = false;     // deleted from the dead-letter stream
};

// The Nats-Msg-Id of a replayed copy: the original id plus ".r<dlq seq>"
// (cut at the front of the original to stay within 64 characters), so the
// events stream does not drop it as a duplicate of the original, while a
// second replay of the same dead letter is deduplicated.
std::string replay_message_id(std::string_view original_id, std::uint64_t dead_letter_seq);

// The dead letters of one deployment: `options` names its prefix and
// streams, as its services configure JetStreamTransport (prefix,
// events.name, dead_letters.name; nothing else is used). Every call is one
// or more requests to the server, each bounded by `timeout`. Thread-safe;
// keeps the connection alive.
//
//   auto conn = catga::nats::Connection::connect(catga::nats::NatsOptions::from_env()).value();
//   catga::nats::DeadLetterQueue dlq(conn, {.prefix = "shop"});
//   for (const auto& letter : dlq.list("InvoiceDue").value()) {
//     std::cout << letter.sequence << ' ' << letter.header_or("Catga-Error") << '\n';
//     if (auto r = dlq.replay(letter); !r) std::cerr << r.error().message << '\n';
//   }
class DeadLetterQueue {
 public:
  explicit DeadLetterQueue(std::shared_ptr<Connection> connection, JetStreamOptions options = {},
                           std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // The dead-letter and events stream names (<PREFIX>_DLQ, <PREFIX>_EVENTS unless named).
  const std::string& stream() const noexcept { return stream_; }
  const std::string& events_stream() const noexcept { return events_; }
  const JetStreamOptions& options() const noexcept { return options_; }

  // Dead letter `sequence`; nullopt when the sequence holds no message (never
  // stored, removed, purged). A missing stream is an `unavailable` Error.
  Result<std::optional<DeadLetter>> get(std::uint64_t sequence) const;
  // Oldest first; `type` empty = all types; `limit` 0 = no limit.
  Result<std::vector<DeadLetter>> list(std::string_view type = {}, std::size_t limit = 0) const;
  // Publishes `letter` again to its original subject, which must be an events
  // subject of this prefix (else a `validation` Error: a dead letter cannot
  // make the caller publish elsewhere), into the events stream only, without
  // the headers dead-lettering added, with Nats-Msg-Id replay_message_id()
  // and Catga-Replayed: <dlq seq>; then removes it from the dead letters
  // unless `keep`. Event-store commits (Catga-Es-Consumer) are refused: they
  // belong to the store, not to the events stream.
  Result<ReplayOutcome> replay(const DeadLetter& letter, bool keep = false) const;
  // Deletes dead letter `sequence`; false when it was not there.
  Result<bool> remove(std::uint64_t sequence) const;
  // Deletes every dead letter (or those of `type`); returns how many.
  Result<std::uint64_t> purge(std::string_view type = {}) const;

 private:
  std::shared_ptr<Connection> connection_;
  JetStreamOptions options_;
  std::chrono::milliseconds timeout_;
  std::string stream_;
  std::string events_;
};

}  // namespace catga::nats
