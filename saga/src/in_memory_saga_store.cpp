#include "catga/saga/store.hpp"

#include "store_counts.hpp"

namespace catga {

Result<std::uint64_t> InMemorySagaStore::create(const SagaRecord& record) {
  std::lock_guard lock(mutex_);
  auto [it, inserted] = sagas_.try_emplace(record.id, StoredSaga{record, 1});
  if (!inserted) return make_error(errc::conflict, "saga '" + record.id + "' exists already", false);
  if (is_final(record.status)) {
    detail::count_finished(finished_, record.status);
  } else {
    active_.insert(record.id);
  }
  return it->second.revision;
}

Result<StoredSaga> InMemorySagaStore::load(std::string_view id) {
  std::lock_guard lock(mutex_);
  auto it = sagas_.find(id);
  if (it == sagas_.end()) return make_error("not_found", "no saga '" + std::string(id) + "'");
  return it->second;
}

Result<std::uint64_t> InMemorySagaStore::update(const SagaRecord& record, std::uint64_t expected_revision) {
  std::lock_guard lock(mutex_);
  auto it = sagas_.find(record.id);
  if (it == sagas_.end()) return make_error("not_found", "no saga '" + record.id + "'");
  if (it->second.revision != expected_revision) {
    return make_error(errc::conflict, "saga '" + record.id + "' is at revision " +
                                          std::to_string(it->second.revision) + ", not " +
                                          std::to_string(expected_revision), true);
  }
  it->second.record = record;
  if (is_final(record.status)) {
    if (active_.erase(record.id) > 0) detail::count_finished(finished_, record.status);
  } else {
    active_.insert(record.id);
  }
  return ++it->second.revision;
}

Result<std::vector<StoredSaga>> InMemorySagaStore::load_active() {
  std::lock_guard lock(mutex_);
  std::vector<StoredSaga> out;
  out.reserve(active_.size());
  for (const auto& id : active_) out.push_back(sagas_.find(id)->second);
  return out;
}

Result<std::vector<std::string>> InMemorySagaStore::list_active() {
  std::lock_guard lock(mutex_);
  return std::vector<std::string>(active_.begin(), active_.end());
}

Result<std::vector<std::string>> InMemorySagaStore::list_all() {
  std::lock_guard lock(mutex_);
  std::vector<std::string> ids;
  ids.reserve(sagas_.size());
  for (const auto& [id, s] : sagas_) ids.push_back(id);
  return ids;
}

Result<SagaCounts> InMemorySagaStore::count() {
  std::lock_guard lock(mutex_);
  SagaCounts counts = finished_;
  for (const auto& id : active_) {
    const auto status = sagas_.find(id)->second.record.status;
    if (status == SagaStatus::running) ++counts.running;
    if (status == SagaStatus::compensating) ++counts.compensating;
  }
  return counts;
}

}  // namespace catga
