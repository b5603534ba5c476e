#include "catga/saga/kv_saga_store.hpp"

namespace catga {
namespace {

Result<SagaRecord> decode(std::string_view id, const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return make_error(errc::malformed, "saga '" + std::string(id) + "': stored value is not JSON");
  try {
    return j.get<SagaRecord>();
  } catch (const std::exception& e) {
    return make_error(errc::malformed, "saga '" + std::string(id) + "': " + e.what());
  }
}

}  // namespace

Result<std::uint64_t> KvSagaStore::create(const SagaRecord& record) {
  return kv_->create(record.id, nlohmann::json(record).dump());
}

Result<StoredSaga> KvSagaStore::load(std::string_view id) {
  auto e = kv_->get(id);
  if (!e) return std::move(e).error();
  if (!*e) return make_error("not_found", "no saga '" + std::string(id) + "'");
  auto r = decode(id, (*e)->value);
  if (!r) return std::move(r).error();
  return StoredSaga{std::move(*r), (*e)->revision};
}

Result<std::uint64_t> KvSagaStore::update(const SagaRecord& record, std::uint64_t expected_revision) {
  return kv_->update(record.id, nlohmann::json(record).dump(), expected_revision);
}

Result<std::vector<std::string>> KvSagaStore::list_all() { return kv_->keys(); }

Result<std::vector<std::string>> KvSagaStore::list_active() {
  auto ids = kv_->keys();
  if (!ids) return ids;
  std::vector<std::string> active;
  for (auto& id : *ids) {
    auto s = load(id);
    if (s && !is_final(s->record.status)) active.push_back(std::move(id));
  }
  return active;
}

}  // namespace catga
