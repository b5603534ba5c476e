#include "catga/saga/kv_saga_store.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

namespace catga {
namespace {

constexpr int kIndexShards = 32;
constexpr std::string_view kIndexMeta = "active.meta";
// An indexed id without a record: its start died between the two writes,
// or is still between them (which takes milliseconds, not a minute).
constexpr std::int64_t kOrphanAfterMs = 60'000;

std::string shard_key(int shard) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "active.%02d", shard);
  return buf;
}

int shard_of(std::string_view id) {
  std::uint32_t h = 2166136261U;  // FNV-1a: stable across builds and languages
  for (unsigned char c : id) h = (h ^ c) * 16777619U;
  return static_cast<int>(h % kIndexShards);
}

std::int64_t indexed_at(const nlohmann::json& v) { return v.is_number_integer() ? v.get<std::int64_t>() : 0; }

Result<SagaRecord> decode(std::string_view id, const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return make_error(errc::malformed, "saga '" + std::string(id) + "': stored value is not JSON");
  try {
    return j.get<SagaRecord>();
  } catch (const std::exception& e) {
    return make_error(errc::malformed, "saga '" + std::string(id) + "': " + e.what());
  }
}

// Applies `change` (returns whether it changed anything) to one index shard
// and writes it back at the revision read; again on conflicts.
template <class F>
Status modify_shard(KeyValue& kv, int shard, F change) {
  const std::string key = shard_key(shard);
  for (int attempt = 0; attempt < 50; ++attempt) {
    auto e = kv.get(key);
    if (!e) return std::move(e).error();
    nlohmann::json ids = nlohmann::json::object();
    if (*e) {
      ids = nlohmann::json::parse((*e)->value, nullptr, false);
      if (!ids.is_object()) return make_error(errc::malformed, "saga index '" + key + "' is not a JSON object");
    }
    if (!change(ids)) return {};
    auto written = *e ? kv.update(key, ids.dump(), (*e)->revision) : kv.create(key, ids.dump());
    if (written) return {};
    if (written.error().code != errc::conflict) return std::move(written).error();
  }
  return make_error(errc::conflict, "saga index '" + key + "' kept changing under us", true);
}

Status unindex(KeyValue& kv, const std::string& id) {
  return modify_shard(kv, shard_of(id), [&](nlohmann::json& ids) { return ids.erase(id) > 0; });
}

}  // namespace

Result<std::uint64_t> KvSagaStore::create(const SagaRecord& record) {
  if (record.id.find('.') != std::string::npos) {
    return make_error(errc::validation, "saga id '" + record.id + "' may not contain '.' (index keys use it)");
  }
  if (auto s = ensure_indexed(); !s) return std::move(s).error();
  const bool active = !is_final(record.status);
  if (active) {
    // Indexed before the record exists: a crash in between leaves an id
    // without a record (dropped later), never a saga recovery cannot find.
    auto s = modify_shard(*kv_, shard_of(record.id), [&](nlohmann::json& ids) {
      ids[record.id] = unix_ms_now();
      return true;
    });
    if (!s) return std::move(s).error();
  }
  auto created = kv_->create(record.id, nlohmann::json(record).dump());
  if (!created && active) {
    bool keep = false;  // the saga that has this id already may be active
    if (created.error().code == errc::conflict) {
      auto existing = load(record.id);
      keep = !existing || !is_final(existing->record.status);
    }
    if (!keep) (void)unindex(*kv_, record.id);  // left behind, load_active drops it later
  }
  return created;
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
  auto rev = kv_->update(record.id, nlohmann::json(record).dump(), expected_revision);
  // The record decides; an index entry left behind by a failure here is
  // dropped by the next load_active.
  if (rev && is_final(record.status)) (void)unindex(*kv_, record.id);
  return rev;
}

Result<std::vector<StoredSaga>> KvSagaStore::load_active() {
  if (auto s = ensure_indexed(); !s) return std::move(s).error();
  std::vector<StoredSaga> active;
  const auto now = unix_ms_now();
  for (int shard = 0; shard < kIndexShards; ++shard) {
    auto e = kv_->get(shard_key(shard));
    if (!e) return std::move(e).error();
    if (!*e) continue;
    auto ids = nlohmann::json::parse((*e)->value, nullptr, false);
    if (!ids.is_object()) {
      return make_error(errc::malformed, "saga index '" + shard_key(shard) + "' is not a JSON object");
    }
    std::map<std::string, std::int64_t> stale;  // finished, or never created
    for (const auto& [id, at] : ids.items()) {
      auto s = load(id);
      if (s) {
        if (is_final(s->record.status)) {
          stale.emplace(id, indexed_at(at));
        } else {
          active.push_back(std::move(*s));
        }
      } else if (s.error().code != "not_found") {
        continue;  // unreadable for now (or malformed): skipped, as a pass always did
      } else if (now - indexed_at(at) > kOrphanAfterMs) {
        stale.emplace(id, indexed_at(at));
      }
    }
    if (stale.empty()) continue;
    // Only the entries seen here: an id indexed again since (a new saga
    // under the id of an expired one) stays.
    (void)modify_shard(*kv_, shard, [&](nlohmann::json& current) {
      bool changed = false;
      for (const auto& [id, at] : stale) {
        auto it = current.find(id);
        if (it != current.end() && indexed_at(*it) == at) {
          current.erase(it);
          changed = true;
        }
      }
      return changed;
    });
  }
  std::sort(active.begin(), active.end(),
            [](const StoredSaga& a, const StoredSaga& b) { return a.record.id < b.record.id; });
  return active;
}

Result<std::vector<std::string>> KvSagaStore::list_all() {
  auto keys = kv_->keys();
  if (!keys) return keys;
  std::erase_if(*keys, [](const std::string& k) { return k.find('.') != std::string::npos; });  // index keys
  return keys;
}

Status KvSagaStore::ensure_indexed() {
  std::lock_guard lock(index_mutex_);
  if (indexed_) return {};
  auto meta = kv_->get(kIndexMeta);
  if (!meta) return std::move(meta).error();
  if (*meta) {
    auto j = nlohmann::json::parse((*meta)->value, nullptr, false);
    if (!j.is_object() || j.value("shards", 0) != kIndexShards) {
      return make_error(errc::malformed, "saga bucket index '" + std::string(kIndexMeta) + "' is " + (*meta)->value +
                                             ", expected {\"shards\":" + std::to_string(kIndexShards) + "}");
    }
    indexed_ = true;
    return {};
  }
  // A new bucket, or one written before the index existed: index its active
  // sagas once (a full scan, the last one).
  auto ids = list_all();
  if (!ids) return std::move(ids).error();
  std::map<int, std::vector<std::string>> by_shard;
  for (const auto& id : *ids) {
    auto s = load(id);
    if (!s && s.error().code != "not_found" && s.error().code != errc::malformed) return std::move(s).error();
    if (s && !is_final(s->record.status)) by_shard[shard_of(id)].push_back(id);
  }
  const auto now = unix_ms_now();
  for (const auto& [shard, add] : by_shard) {
    auto s = modify_shard(*kv_, shard, [&](nlohmann::json& current) {
      bool changed = false;
      for (const auto& id : add) {
        if (current.contains(id)) continue;
        current[id] = now;
        changed = true;
      }
      return changed;
    });
    if (!s) return s;
  }
  auto written = kv_->create(kIndexMeta, nlohmann::json{{"shards", kIndexShards}}.dump());
  if (!written && written.error().code != errc::conflict) return std::move(written).error();
  indexed_ = true;
  return {};
}

}  // namespace catga
