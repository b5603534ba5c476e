#pragma once
// KvSagaStore: saga records in a KeyValue bucket (JetStream KV in production).

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "catga/key_value.hpp"
#include "catga/saga/store.hpp"

namespace catga {

// One key per saga (the saga id), the record as JSON, the bucket's revision
// as the saga revision: optimistic concurrency comes from the bucket.
//
// The index of active sagas lives in the same bucket, spread over 32 keys
// "active.00".."active.31" (each a JSON object: saga id -> ms when indexed).
// A saga joins its shard before its record is created and leaves it once its
// final state is stored, so load_active() reads 32 index keys and the active
// records, never a finished one; and finishing leaves no key behind (a key
// per active saga would leave a delete marker per finished saga, which a
// JetStream KV key listing still walks). "active.meta" says the bucket is
// indexed: a bucket written before the index existed is indexed once, by a
// full scan in the first call that finds it missing (erase "active.meta" to
// index again, e.g. after older orchestrators stopped writing to the bucket).
// Saga ids may not contain '.'.
//
// count() adds up totals kept in the same keys: each shard holds, besides
// its ids, ".finished" = {"completed":n,"compensated":n,
// "compensation_failed":n}, increased in the write that drops a finished
// saga (so each is counted once, by whichever store drops it), and
// "active.meta" holds the totals of the sagas that were already finished
// when the bucket was indexed (a bucket indexed before totals were kept is
// scanned once more for them).
//
// Finished records stay, for get(), wait() and idempotent start. To let them
// expire, give the bucket a ttl far longer than any saga lives (it applies
// to every key; an expired "active.meta" only costs one re-indexing scan).
//
//   auto bucket = catga::nats::KvBucket::open(connection, {.bucket = "order_sagas"}).value();
//   catga::SagaOrchestrator orch(mediator, std::make_shared<catga::KvSagaStore>(bucket));
namespace detail {
// What a KvSagaStore last read or wrote of one index shard: a change starts
// from it instead of a read, and a write at a revision that is no longer
// current is refused by the bucket (then read again). Its lock lets the
// store's own writers of a shard take turns instead of refusing each
// other's writes.
struct SagaIndexShard {
  std::mutex mutex;
  bool known = false;
  std::string value;  // the JSON object as stored; empty: no such key
  std::uint64_t revision = 0;
};
}  // namespace detail

class KvSagaStore final : public SagaStore {
 public:
  explicit KvSagaStore(std::shared_ptr<KeyValue> kv) : kv_(std::move(kv)) {}

  Result<std::uint64_t> create(const SagaRecord& record) override;
  Result<StoredSaga> load(std::string_view id) override;
  Result<std::uint64_t> update(const SagaRecord& record, std::uint64_t expected_revision) override;
  Result<std::vector<StoredSaga>> load_active() override;
  Result<std::vector<std::string>> list_all() override;
  Result<SagaCounts> count() override;

 private:
  Status ensure_indexed();
  detail::SagaIndexShard& shard_cache(std::string_view id);
  // The active sagas, through the index; with `finished`, also adds the
  // shards' totals and the finished sagas still listed to it.
  Result<std::vector<StoredSaga>> scan(SagaCounts* finished);

  std::shared_ptr<KeyValue> kv_;
  std::array<detail::SagaIndexShard, 32> shards_;  // "active.00".."active.31"
  std::mutex index_mutex_;
  bool indexed_ = false;          // "active.meta" (with totals) seen or written by this store
  SagaCounts indexed_finished_;  // the totals in "active.meta"
};

}  // namespace catga
