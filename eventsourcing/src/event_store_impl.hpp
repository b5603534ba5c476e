#pragma once
// EventStore::Impl: shared with the projection and the relay (same stream,
// same connection).

#include <nats/nats.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "catga/eventsourcing/event_store.hpp"
#include "catga/nats/native/connection.hpp"
#include "catga/nats/native/handle.hpp"

namespace catga::eventsourcing {

// The last commit this store saw of each stream (read, or appended and
// confirmed): its sequence and the last version it claims. A stored message
// never changes, so confirm() takes this instead of asking the leader what
// the message at the expected position holds (one round trip less per
// append after a read or an append). Cleared when it holds kLimit streams.
class SeenEnds {
 public:
  void remember(const std::string& stream, std::uint64_t sequence, std::uint64_t version) {
    std::lock_guard lock(mu_);
    if (ends_.size() >= kLimit && ends_.find(stream) == ends_.end()) ends_.clear();
    ends_[stream] = {sequence, version};
  }
  bool holds(const std::string& stream, std::uint64_t sequence, std::uint64_t version) const {
    std::lock_guard lock(mu_);
    const auto it = ends_.find(stream);
    return it != ends_.end() && it->second == std::pair{sequence, version};
  }

 private:
  static constexpr std::size_t kLimit = 4096;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::pair<std::uint64_t, std::uint64_t>> ends_;
};

struct EventStore::Impl {
  std::shared_ptr<nats::Connection> connection;
  EventStoreOptions options;
  std::string stream_name;
  nats::native::JsHandle js;  // own context: Wait = options.timeout
  std::atomic<std::uint64_t> ignored{0};  // commits skipped by the read rule
  // The stream has more than one replica (its config on the server when the
  // store was created; true when that could not be read): appends are
  // confirmed and reads check their end on the leader.
  bool replicated = true;
  SeenEnds seen;

  natsConnection* nc() const noexcept { return nats::native::connection_of(*connection); }
  jsCtx* jet() const noexcept { return js.get(); }
  const Upcasters* upcasters() const noexcept { return options.upcasters.get(); }
};

}  // namespace catga::eventsourcing
