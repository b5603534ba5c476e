#include "catga/saga/store.hpp"

namespace catga {

Result<std::uint64_t> InMemorySagaStore::create(const SagaRecord& record) {
  std::lock_guard lock(mutex_);
  auto [it, inserted] = sagas_.try_emplace(record.id, StoredSaga{record, 1});
  if (!inserted) return make_error(errc::conflict, "saga '" + record.id + "' exists already", false);
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
  return ++it->second.revision;
}

Result<std::vector<std::string>> InMemorySagaStore::list_active() {
  std::lock_guard lock(mutex_);
  std::vector<std::string> ids;
  for (const auto& [id, s] : sagas_) {
    if (!is_final(s.record.status)) ids.push_back(id);
  }
  return ids;
}

Result<std::vector<std::string>> InMemorySagaStore::list_all() {
  std::lock_guard lock(mutex_);
  std::vector<std::string> ids;
  for (const auto& [id, s] : sagas_) ids.push_back(id);
  return ids;
}

}  // namespace catga
