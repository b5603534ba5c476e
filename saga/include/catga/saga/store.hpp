#pragma once
// SagaStore: where saga records live, with optimistic concurrency.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "catga/result.hpp"
#include "catga/saga/record.hpp"

namespace catga {

// A record and the revision it was read at.
struct StoredSaga {
  SagaRecord record;
  std::uint64_t revision = 0;
};

// Active sagas by status.
struct ActiveSagaCounts {
  std::size_t running = 0;
  std::size_t compensating = 0;
};

// Sagas by status, finished ones included: what a metrics scrape wants to know.
struct SagaCounts {
  std::size_t running = 0;
  std::size_t compensating = 0;
  std::size_t completed = 0;
  std::size_t compensated = 0;
  std::size_t compensation_failed = 0;
};

// Persistence for sagas. Every write names the revision it expects, so two
// orchestrators can never both advance one saga: the loser gets an Error with
// code `conflict` and stops driving it. Implementations: InMemorySagaStore
// (tests, single process) and KvSagaStore (JetStream KV, catga::nats).
//
// Stores keep an index of active (not final) sagas, which a saga leaves when
// its final state is stored, and count the sagas that left it by final
// status: recovery passes and metrics read active sagas only, however many
// finished ones the store holds.
//
//   auto created = store.create(record);                 // revision 1
//   auto loaded = store.load(record.id);                 // {record, 1}
//   auto next = store.update(loaded->record, loaded->revision);
//   auto active = store.count_active();                  // {running, compensating}
//   auto all = store.count();                            // ... and the finished totals
class SagaStore {
 public:
  virtual ~SagaStore() = default;
  // Stores a new record; `conflict` when the id exists already.
  virtual Result<std::uint64_t> create(const SagaRecord& record) = 0;
  // The record and its revision; `not_found` when absent.
  virtual Result<StoredSaga> load(std::string_view id) = 0;
  // Replaces the record if it is still at `expected_revision`; returns the new revision.
  virtual Result<std::uint64_t> update(const SagaRecord& record, std::uint64_t expected_revision) = 0;
  // The sagas that are not final (running or compensating), sorted by id,
  // read through the index: never a read of a finished saga.
  virtual Result<std::vector<StoredSaga>> load_active() = 0;
  // Ids of every saga, finished ones included: a scan of the whole store,
  // for operators and tests, not for anything periodic.
  virtual Result<std::vector<std::string>> list_all() = 0;

  // Ids of load_active().
  virtual Result<std::vector<std::string>> list_active();
  // load_active() counted by status.
  Result<ActiveSagaCounts> count_active();
  // count_active() and how many sagas finished in each final status, of
  // every orchestrator using the store. InMemorySagaStore and KvSagaStore
  // keep these totals as sagas finish, so this reads no finished saga; the
  // default, for other stores, reads every saga (list_all()).
  virtual Result<SagaCounts> count();
};

// A SagaStore in process memory. Thread-safe.
//
//   auto store = std::make_shared<catga::InMemorySagaStore>();
//   catga::SagaOrchestrator orch(mediator, store);
class InMemorySagaStore final : public SagaStore {
 public:
  Result<std::uint64_t> create(const SagaRecord& record) override;
  Result<StoredSaga> load(std::string_view id) override;
  Result<std::uint64_t> update(const SagaRecord& record, std::uint64_t expected_revision) override;
  Result<std::vector<StoredSaga>> load_active() override;
  Result<std::vector<std::string>> list_active() override;
  Result<std::vector<std::string>> list_all() override;
  Result<SagaCounts> count() override;

 private:
  std::mutex mutex_;
  std::map<std::string, StoredSaga, std::less<>> sagas_;
  std::set<std::string, std::less<>> active_;  // ids of the sagas in sagas_ that are not final
  SagaCounts finished_;                        // sagas that left active_ (or were created final), by status
};

}  // namespace catga
