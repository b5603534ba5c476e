#pragma once
// KvLeader: reads and conditional writes of a JetStream KV bucket whose
// outcome is decided by the stream leader's answers, never by a read of a
// possibly lagging replica. Shared by KvBucket and KvIdempotencyStore, so
// both recognise conflicts and lost answers the same way (implemented in
// key_value.cpp).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nats/nats.h>

#include "catga/nats/connection.hpp"
#include "catga/result.hpp"

namespace catga::nats::detail {

// A key's last message as the stream leader holds it.
struct KvStored {
  std::uint64_t revision = 0;
  bool deleted = false;  // a delete or purge marker (an erased key)
  std::string value;
  std::string writer;        // Catga-Kv-Writer; empty when not written through KvLeader
  std::string msg_id;        // Nats-Msg-Id
  std::int64_t time_ns = 0;  // the server's timestamp of the message (UTC, ns since the epoch)
};

// Works on a context and bucket owned by the caller (a KvBinding), which
// must outlive it. Thread-safe.
//
//   detail::KvLeader leader(*connection, binding.js.get(), "orders", 5s, 0ns);
//   auto rev = leader.create("order.1", "placed");      // conflict: exists
//   auto now = leader.read_last_until("order.1", deadline);
//   leader.write("order.1", "paid", (*now)->revision);  // conflict: not at that revision
class KvLeader {
 public:
  using Clock = std::chrono::steady_clock;

  KvLeader() = default;
  // `timeout`: deadline of one write (one request waits a quarter of it, at
  // least 100 ms); `ttl`: the bucket's max age (0: none).
  // Writes go through native::Request on `connection` (which must outlive it).
  KvLeader(const Connection& connection, jsCtx* js, const std::string& bucket, std::chrono::milliseconds timeout,
           std::chrono::nanoseconds ttl);

  // The key's last message from the leader ($JS.API.STREAM.MSG.GET), or
  // nullopt when it has none.
  Result<std::optional<KvStored>> read_last(const std::string& key, std::int64_t wait_ms) const;
  // The message at `revision` if it is the key's (nullopt: gone or another key's).
  Result<std::optional<KvStored>> read_at(const std::string& key, std::uint64_t revision, std::int64_t wait_ms) const;
  // read_last, tried again on retryable failures until `deadline`.
  Result<std::optional<KvStored>> read_last_until(const std::string& key, Clock::time_point deadline) const;

  // Stores `value` if the key's last message is at `expected` (0: no message
  // at all). `conflict` (retryable) means not stored; a retryable `timeout`
  // means it may be stored; a lost answer of a stored write is recognised.
  Result<std::uint64_t> write(const std::string& key, std::string_view value, std::uint64_t expected) const;
  // Creates the key if it has no value (none, or a delete/purge marker).
  Result<std::uint64_t> create(const std::string& key, std::string_view value) const;

  std::chrono::milliseconds timeout() const noexcept { return timeout_; }
  std::string subject_of(std::string_view key) const { return subject_prefix_ + std::string(key); }

 private:
  std::int64_t try_ms(Clock::time_point deadline) const;

  const Connection* connection_ = nullptr;
  jsCtx* js_ = nullptr;
  std::string stream_;          // KV_<bucket>
  std::string subject_prefix_;  // $KV.<bucket>.
  std::chrono::milliseconds timeout_{5'000};
  std::chrono::nanoseconds ttl_{0};
};

}  // namespace catga::nats::detail
