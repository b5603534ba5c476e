#pragma once
// JetStream streams and their consumers as an operator sees them, and the
// stream provisioning catga's own streams go through.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "catga/nats/connection.hpp"
#include "catga/nats/options.hpp"
#include "catga/result.hpp"

namespace catga::nats {

// One stream: configuration and state at the time it was asked for.
struct StreamInfo {
  std::string name;
  std::vector<std::string> subjects;
  StorageType storage = StorageType::file;
  int replicas = 1;
  std::chrono::nanoseconds duplicate_window{0};
  std::chrono::nanoseconds max_age{0};  // 0: keep forever
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
  std::int64_t consumers = 0;
};

// One consumer of a stream with its lag. The JetStream transport describes
// the consumers of its groups as "catga group '<group>' for <Type>".
struct ConsumerInfo {
  std::string stream;
  std::string name;
  std::string description;
  std::string filter_subject;
  std::uint64_t pending = 0;          // in the stream, not yet delivered
  std::int64_t ack_pending = 0;       // delivered, not yet acknowledged
  std::int64_t redelivered = 0;       // delivered more than once, not yet acknowledged
  std::int64_t waiting = 0;           // open pull requests
  std::uint64_t delivered_stream_seq = 0;
  std::uint64_t ack_floor_stream_seq = 0;
};

// Every stream of the account (none: empty). `wait` bounds each server request.
//
//   auto conn = catga::nats::Connection::connect(options).value();
//   for (const auto& s : catga::nats::list_streams(*conn).value()) std::cout << s.name << ' ' << s.messages << '\n';
Result<std::vector<StreamInfo>> list_streams(const Connection& connection,
                                             std::chrono::milliseconds wait = std::chrono::seconds(5));

// Every consumer of `stream`; an `unavailable` Error when the stream does
// not exist.
//
//   for (const auto& c : catga::nats::list_consumers(*conn, "CATGA_EVENTS").value())
//     if (c.pending > 1000) alert(c.name);
Result<std::vector<ConsumerInfo>> list_consumers(const Connection& connection, const std::string& stream,
                                                 std::chrono::milliseconds wait = std::chrono::seconds(5));

// Creates stream `name` over `subjects` (limits retention), or checks that the
// existing one has the same subjects, retention, storage, replicas, limits
// and duplicate window: a difference is a `conflict` Error naming the field;
// an existing stream is never changed. Safe to call from several processes
// at once. The JetStream transport provisions its streams this way.
//
//   catga::nats::StreamOptions o;
//   o.storage = catga::nats::StorageType::memory;
//   if (auto s = catga::nats::ensure_stream(*conn, "ORDERS_ES", {"orders.es.>"}, o); !s) return s;
Status ensure_stream(const Connection& connection, const std::string& name, const std::vector<std::string>& subjects,
                     const StreamOptions& options, std::chrono::milliseconds wait = std::chrono::seconds(5));

}  // namespace catga::nats
