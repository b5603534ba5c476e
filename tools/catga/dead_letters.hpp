#pragma once
// Reading, replaying and purging the dead-letter stream (docs/wire-format.md,
// "Dead letters"; replay rules: docs/operations.md).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "catga/result.hpp"
#include "session.hpp"

namespace catga::cli {

// One message of the dead-letter stream.
//
//   auto dl = read_dead_letter(session, 7);       // nullopt: no such sequence
//   if (dl && *dl) std::cout << (*dl)->error();
struct DeadLetter {
  std::uint64_t sequence = 0;  // in the dead-letter stream
  std::string subject;         // <prefix>.dlq.<Type>
  std::string type;
  long long time_ns = 0;       // when it was stored
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  std::optional<std::string_view> header(std::string_view name) const;
  std::string header_or(std::string_view name, std::string_view fallback = "") const;
  // Summary fields (list) and everything (show) as JSON.
  nlohmann::json summary_json() const;
  nlohmann::json full_json() const;
};

// What became of one replayed dead letter.
struct ReplayOutcome {
  std::uint64_t dead_letter_seq = 0;
  std::string subject;      // where it was published
  std::string message_id;   // Nats-Msg-Id of the copy
  std::string original_id;  // Catga-Original-Msg-Id (what consumers see as the message id)
  std::uint64_t stream_seq = 0;
  bool duplicate = false;   // this dead letter was already replayed within the duplicate window
  bool removed = false;     // deleted from the dead-letter stream
};

// The Nats-Msg-Id of a replayed copy: the original id plus ".r<dlq seq>"
// (cut at the front of the original to stay within 64 characters), so the
// events stream does not drop it as a duplicate of the original, while a
// second replay of the same dead letter is deduplicated.
std::string replay_message_id(std::string_view original_id, std::uint64_t dead_letter_seq);

// nullopt when the sequence holds no message (never stored, deleted, purged).
Result<std::optional<DeadLetter>> read_dead_letter(const Session& session, std::uint64_t sequence);
// Oldest first; `type` empty = all types; `limit` 0 = no limit.
Result<std::vector<DeadLetter>> list_dead_letters(const Session& session, std::string_view type, std::size_t limit);
// Publishes `letter` to its original subject (see replay_message_id) marked
// with Catga-Replayed: <dlq seq>; deletes it from the dead letters unless `keep`.
Result<ReplayOutcome> replay_dead_letter(const Session& session, const DeadLetter& letter, bool keep);
// Removes all dead letters (or those of `type`); returns how many.
Result<std::uint64_t> purge_dead_letters(const Session& session, std::string_view type);

}  // namespace catga::cli
