#include "catga/saga/store.hpp"

#include "store_counts.hpp"

namespace catga {

Result<std::vector<std::string>> SagaStore::list_active() {
  auto active = load_active();
  if (!active) return std::move(active).error();
  std::vector<std::string> ids;
  ids.reserve(active->size());
  for (auto& s : *active) ids.push_back(std::move(s.record.id));
  return ids;
}

Result<ActiveSagaCounts> SagaStore::count_active() {
  auto active = load_active();
  if (!active) return std::move(active).error();
  ActiveSagaCounts counts;
  for (const auto& s : *active) {
    if (s.record.status == SagaStatus::running) ++counts.running;
    if (s.record.status == SagaStatus::compensating) ++counts.compensating;
  }
  return counts;
}

Result<SagaCounts> SagaStore::count() {
  auto active = count_active();
  if (!active) return std::move(active).error();
  SagaCounts counts;
  counts.running = active->running;
  counts.compensating = active->compensating;
  auto ids = list_all();
  if (!ids) return std::move(ids).error();
  for (const auto& id : *ids) {
    auto s = load(id);
    if (s) detail::count_finished(counts, s->record.status);
  }
  return counts;
}

}  // namespace catga
