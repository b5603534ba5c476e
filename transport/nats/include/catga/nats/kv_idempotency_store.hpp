#pragma once
// KvIdempotencyStore: the idempotency store on a JetStream key-value bucket,
// shared by every instance and surviving restarts.

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "catga/nats/connection.hpp"
#include "catga/nats/options.hpp"
#include "catga/pipeline/idempotency.hpp"
#include "catga/pipeline/idempotency_store.hpp"

namespace catga::nats {

// Settings of KvIdempotencyStore.
struct KvIdempotencyOptions {
  std::string bucket = "catga_idempotency";
  // How long outcomes (and claims) are kept: the bucket's max age. An
  // outcome is remembered this long whatever ttl complete() is given.
  std::chrono::nanoseconds ttl = std::chrono::hours(24);
  StorageType storage = StorageType::file;
  int replicas = 1;
  // nats-server before 2.10 can store two conditional writes that expect the
  // same revision of a replicated stream while its leader changes
  // (nats-server issue 4320): a lost update, which conflicts are meant to
  // prevent. open() therefore refuses a bucket with replicas > 1 (asked for
  // here, or made so by someone else) on such a server with a `validation`
  // Error, unless this is set: only for accepting that risk knowingly (see
  // KvBucketOptions).
  bool allow_replicated_before_nats_2_10 = false;
  // Deadline of one KV operation (create, update, get, delete); a create or
  // update without an answer is sent again within it (each try waits a
  // quarter of it, at least 100 ms).
  std::chrono::milliseconds timeout{5'000};
  // How often wait() looks again while someone else holds the key.
  std::chrono::milliseconds poll_interval{50};
};

// IdempotencyStore on JetStream KV, so duplicates are recognised across
// instances and restarts:
//   claim    = create-if-absent of an in-progress marker
//              {"claim":"in_progress","lease_ms":N,"owner":"<nonce>"}; its
//              revision is the token. A marker older than its lease (by the
//              server's timestamp) is taken over by an update on its revision.
//   complete = update to the outcome (the reply format {"ok":true,...}) if the
//              key still holds our revision.
//   release  = a delete marker published with "expected last subject
//              sequence" = our revision (a no-op when the claim was lost).
//   wait     = claim again every poll_interval until the deadline.
// Creates, updates and the reads that decide them work as KvBucket's (see
// key_value.hpp), also on replicated buckets (replicas = 3): reads go to the
// stream leader, never to a possibly lagging replica; a conflict is known
// from the server's answer ("wrong last sequence"); a write whose answer was
// lost is sent again within `timeout` and recognised when it was stored (a
// claim by its owner nonce too, a complete() by its outcome), so complete()
// reports `conflict` ("claim was lost") only when another write holds the key.
// Keys are escaped into the KV key alphabet (see encode_key). Errors
// reaching the server are retryable `unavailable`/`timeout`. Thread-safe.
//
//   auto conn = catga::nats::Connection::connect(opts).value();
//   auto store = catga::nats::KvIdempotencyStore::create(conn).value();
//   mediator.use(std::make_shared<catga::IdempotencyBehavior>(catga::nats::exactly_once_idempotency(store)));
class KvIdempotencyStore final : public IdempotencyStore {
 public:
  // Binds to the bucket, creating it when absent.
  static Result<std::shared_ptr<KvIdempotencyStore>> create(std::shared_ptr<Connection> connection,
                                                            KvIdempotencyOptions options = {});
  ~KvIdempotencyStore() override;
  KvIdempotencyStore(const KvIdempotencyStore&) = delete;
  KvIdempotencyStore& operator=(const KvIdempotencyStore&) = delete;

  Result<IdempotencyClaim> claim(std::string_view key, duration lease) override;
  Result<IdempotencyClaim> wait(std::string_view key, duration lease, time_point deadline) override;
  Status complete(std::string_view key, std::uint64_t token, IdempotencyOutcome outcome,
                  duration ttl) override;
  Status release(std::string_view key, std::uint64_t token) override;

  // The KV key for `key`: [A-Za-z0-9_-] kept, every other byte as "=XX"
  // (hex), so any text is a valid, unique key. Empty → "=".
  static std::string encode_key(std::string_view key);

  const KvIdempotencyOptions& options() const noexcept;

  struct Impl;

 private:
  explicit KvIdempotencyStore(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

// IdempotencyOptions for exactly-once effects on consumed events: the
// behavior applies only to message types declared QoS::exactly_once (other
// types pass through), keyed by "<handler key>:<message id>" (for consumer
// groups the handler key is the group, so each group applies an event once).
//
//   mediator.use(std::make_shared<catga::IdempotencyBehavior>(catga::nats::exactly_once_idempotency(store)));
IdempotencyOptions exactly_once_idempotency(std::shared_ptr<IdempotencyStore> store);

}  // namespace catga::nats
