#pragma once
// KvBucket: a catga::KeyValue on a JetStream key-value bucket.

#include <chrono>
#include <memory>
#include <string>

#include "catga/key_value.hpp"
#include "catga/nats/connection.hpp"
#include "catga/nats/options.hpp"

namespace catga::nats {

// Settings of KvBucket.
struct KvBucketOptions {
  std::string bucket;
  int history = 1;
  std::chrono::nanoseconds ttl{0};  // 0: keep forever
  StorageType storage = StorageType::file;
  int replicas = 1;
  // nats-server before 2.10 can store two conditional writes that expect the
  // same revision of a replicated stream while its leader changes
  // (nats-server issue 4320): a lost update, which conflicts are meant to
  // prevent. open() therefore refuses a bucket with replicas > 1 (asked for
  // here, or made so by someone else) on such a server with a `validation`
  // Error, unless this is set: only for accepting that risk knowingly (the
  // 2.9 runs of the cluster tests do). The check asks the stream's leader,
  // so a bucket open() creates is made before it is refused.
  bool allow_replicated_before_nats_2_10 = false;
  // Deadline of one operation. One request waits at most a quarter of it
  // (at least 100 ms): a create or update whose answer is lost (frozen or
  // crashed leader, reconnect) is sent again within the deadline.
  std::chrono::milliseconds timeout{5'000};
};

// Service state, saga state and the like, shared by every replica through
// the server. Revisions are the bucket's stream sequences, so update() with
// a stale revision fails with `conflict` (retryable): the basis of safe
// read-modify-write across processes (see catga::kv_modify). Keys use the KV
// alphabet [-/_=.a-zA-Z0-9]; anything else is a `validation` Error.
// Thread-safe.
//
// On replicated buckets (replicas = 3):
//   - get() reads from the stream leader, never from a possibly lagging
//     replica (a read right after a write sees it; kv_modify decides on it).
//   - create()/update() know a conflict from the server's answer ("wrong
//     last sequence", JetStream error 10071), not from a read.
//   - update()s expecting the same revision carry the same Nats-Msg-Id
//     ("catga-kv:<key>@<revision>"), so the server stores one of them at
//     most, also where nats-server 2.9 lets two conditional publishes
//     through. Every create/update carries a `Catga-Kv-Writer` header.
//   - A create/update whose answer was lost is sent again; if it had been
//     stored, it is recognised and its revision returned. When that cannot
//     be told before the deadline the Error is a retryable `timeout` saying
//     the write may be stored: `conflict` always means "not stored".
//   - put() and erase() are unconditional: on nats-server 2.9 an update in
//     flight at the same moment may overwrite them.
//
//   auto conn = catga::nats::Connection::connect(catga::nats::NatsOptions::from_env()).value();
//   auto stock = catga::nats::KvBucket::open(conn, {.bucket = "inventory"}).value();
//   catga::kv_modify(*stock, "sku.A-1", [](const std::optional<std::string>& v) ...);
class KvBucket final : public KeyValue {
 public:
  // Binds to the bucket, creating it when absent.
  static Result<std::shared_ptr<KvBucket>> open(std::shared_ptr<Connection> connection, KvBucketOptions options);
  ~KvBucket() override;
  KvBucket(const KvBucket&) = delete;
  KvBucket& operator=(const KvBucket&) = delete;

  Result<std::optional<KvEntry>> get(std::string_view key) override;
  Result<std::uint64_t> create(std::string_view key, std::string_view value) override;
  Result<std::uint64_t> update(std::string_view key, std::string_view value, std::uint64_t expected_revision) override;
  Result<std::uint64_t> put(std::string_view key, std::string_view value) override;
  Status erase(std::string_view key) override;
  Result<std::vector<std::string>> keys(std::string_view prefix = {}) override;

  const KvBucketOptions& options() const noexcept;

  struct Impl;

 private:
  explicit KvBucket(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace catga::nats
