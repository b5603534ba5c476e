#pragma once
// KvSagaStore: saga records in a KeyValue bucket (JetStream KV in production).

#include <memory>

#include "catga/key_value.hpp"
#include "catga/saga/store.hpp"

namespace catga {

// One key per saga (the saga id), the record as JSON, the bucket's revision
// as the saga revision: optimistic concurrency comes from the bucket.
//
//   auto bucket = catga::JetStreamKeyValue::open(connection, {.bucket = "order_sagas"}).value();
//   catga::SagaOrchestrator orch(mediator, std::make_shared<catga::KvSagaStore>(bucket));
class KvSagaStore final : public SagaStore {
 public:
  explicit KvSagaStore(std::shared_ptr<KeyValue> kv) : kv_(std::move(kv)) {}

  Result<std::uint64_t> create(const SagaRecord& record) override;
  Result<StoredSaga> load(std::string_view id) override;
  Result<std::uint64_t> update(const SagaRecord& record, std::uint64_t expected_revision) override;
  Result<std::vector<std::string>> list_active() override;
  Result<std::vector<std::string>> list_all() override;

 private:
  std::shared_ptr<KeyValue> kv_;
};

}  // namespace catga
