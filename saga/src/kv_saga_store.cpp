#include "catga/saga/kv_saga_store.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <utility>

#include "store_counts.hpp"

namespace catga {
namespace {

constexpr int kIndexShards = 32;
constexpr std::string_view kIndexMeta = "active.meta";
// A member of every shard object besides the ids: how many sagas left that
// shard in each final status ({"completed":n,...}). Saga ids have no '.'.
const std::string kFinishedMember = ".finished";
constexpr SagaStatus kFinalStatuses[] = {SagaStatus::completed, SagaStatus::compensated,
                                         SagaStatus::compensation_failed};
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

// Whether a member of a shard object is a saga id (not ".finished").
bool is_id(std::string_view member) { return member.find('.') == std::string_view::npos; }

// Adds one saga that finished in `status` to a shard's totals.
void add_finished(nlohmann::json& shard, SagaStatus status) {
  auto& totals = shard[kFinishedMember];
  if (!totals.is_object()) totals = nlohmann::json::object();
  const std::string key(to_string(status));
  totals[key] = totals.value(key, std::uint64_t{0}) + 1;
}

// Adds the totals object `totals` ({"completed":n,...}) to `counts`.
void read_finished(const nlohmann::json& totals, SagaCounts& counts) {
  if (!totals.is_object()) return;
  for (auto status : kFinalStatuses) {
    const auto it = totals.find(std::string(to_string(status)));
    if (it != totals.end() && it->is_number_unsigned()) detail::count_finished(counts, status, it->get<std::size_t>());
  }
}

nlohmann::json finished_json(const SagaCounts& counts) {
  return {{std::string(to_string(SagaStatus::completed)), counts.completed},
          {std::string(to_string(SagaStatus::compensated)), counts.compensated},
          {std::string(to_string(SagaStatus::compensation_failed)), counts.compensation_failed}};
}

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
// and writes it back at the revision read; again on conflicts. The first
// try starts from what this store last read or wrote of the shard (`cache`);
// a change found unnecessary there is checked again on a fresh read.
template <class F>
Status modify_shard(KeyValue& kv, detail::SagaIndexShard& cache, int shard, F change) {
  const std::string key = shard_key(shard);
  std::lock_guard lock(cache.mutex);
  for (int attempt = 0; attempt < 50; ++attempt) {
    const bool cached = cache.known;
    if (!cached) {
      auto e = kv.get(key);
      if (!e) return std::move(e).error();
      cache.value = *e ? (*e)->value : std::string();
      cache.revision = *e ? (*e)->revision : 0;
      cache.known = true;
    }
    const bool exists = !cache.value.empty();
    nlohmann::json ids = nlohmann::json::object();
    if (exists) {
      ids = nlohmann::json::parse(cache.value, nullptr, false);
      if (!ids.is_object()) {
        cache.known = false;
        return make_error(errc::malformed, "saga index '" + key + "' is not a JSON object");
      }
    }
    if (!change(ids)) {
      if (!cached) return {};
      cache.known = false;  // decided on what we knew: decide again on what is stored
      continue;
    }
    std::string text = ids.dump();
    auto written = exists ? kv.update(key, text, cache.revision) : kv.create(key, text);
    if (written) {
      cache.value = std::move(text);
      cache.revision = *written;
      return {};
    }
    cache.known = false;
    if (written.error().code != errc::conflict) return std::move(written).error();
  }
  return make_error(errc::conflict, "saga index '" + key + "' kept changing under us", true);
}

// Drops `id` from its shard; `finished`: the status it finished in, counted
// in the same write (so a saga is counted once, by whoever drops it).
Status unindex(KeyValue& kv, std::array<detail::SagaIndexShard, 32>& shards, const std::string& id,
               std::optional<SagaStatus> finished) {
  const int shard = shard_of(id);
  return modify_shard(kv, shards[static_cast<std::size_t>(shard)], shard, [&](nlohmann::json& ids) {
    if (ids.erase(id) == 0) return false;
    if (finished) add_finished(ids, *finished);
    return true;
  });
}

}  // namespace

detail::SagaIndexShard& KvSagaStore::shard_cache(std::string_view id) {
  static_assert(std::tuple_size_v<decltype(shards_)> == kIndexShards);
  return shards_[static_cast<std::size_t>(shard_of(id))];
}

Result<std::uint64_t> KvSagaStore::create(const SagaRecord& record) {
  if (record.id.find('.') != std::string::npos) {
    return make_error(errc::validation, "saga id '" + record.id + "' may not contain '.' (index keys use it)");
  }
  if (auto s = ensure_indexed(); !s) return std::move(s).error();
  const bool active = !is_final(record.status);
  if (active) {
    // Indexed before the record exists: a crash in between leaves an id
    // without a record (dropped later), never a saga recovery cannot find.
    auto s = modify_shard(*kv_, shard_cache(record.id), shard_of(record.id), [&](nlohmann::json& ids) {
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
    if (!keep) (void)unindex(*kv_, shards_, record.id, std::nullopt);  // left behind, load_active drops it later
  }
  if (created && !active) {
    // Final from the start (an import): counted, best effort, never indexed.
    (void)modify_shard(*kv_, shard_cache(record.id), shard_of(record.id), [&](nlohmann::json& ids) {
      add_finished(ids, record.status);
      return true;
    });
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
  // dropped (and counted) by the next load_active. The index must carry
  // totals before this store adds to them (see ensure_indexed).
  if (rev && is_final(record.status) && ensure_indexed()) (void)unindex(*kv_, shards_, record.id, record.status);
  return rev;
}

Result<std::vector<StoredSaga>> KvSagaStore::load_active() { return scan(nullptr); }

Result<SagaCounts> KvSagaStore::count() {
  SagaCounts counts;
  auto active = scan(&counts);
  if (!active) return std::move(active).error();
  for (const auto& s : *active) {
    if (s.record.status == SagaStatus::running) ++counts.running;
    if (s.record.status == SagaStatus::compensating) ++counts.compensating;
  }
  std::lock_guard lock(index_mutex_);
  counts.completed += indexed_finished_.completed;
  counts.compensated += indexed_finished_.compensated;
  counts.compensation_failed += indexed_finished_.compensation_failed;
  return counts;
}

Result<std::vector<StoredSaga>> KvSagaStore::scan(SagaCounts* finished) {
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
    if (finished != nullptr && ids.contains(kFinishedMember)) read_finished(ids[kFinishedMember], *finished);
    // Finished (with the status to count them in), or never created.
    std::map<std::string, std::pair<std::int64_t, std::optional<SagaStatus>>> stale;
    for (const auto& [id, at] : ids.items()) {
      if (!is_id(id)) continue;
      auto s = load(id);
      if (s) {
        if (is_final(s->record.status)) {
          stale.emplace(id, std::pair{indexed_at(at), s->record.status});
          // Finished but still listed: part of the totals from the cleanup
          // below on; counted here whether or not that write gets through.
          if (finished != nullptr) detail::count_finished(*finished, s->record.status);
        } else {
          active.push_back(std::move(*s));
        }
      } else if (s.error().code != "not_found") {
        continue;  // unreadable for now (or malformed): skipped, as a pass always did
      } else if (now - indexed_at(at) > kOrphanAfterMs) {
        stale.emplace(id, std::pair{indexed_at(at), std::nullopt});
      }
    }
    if (stale.empty()) continue;
    // Only the entries seen here: an id indexed again since (a new saga
    // under the id of an expired one) stays. Whoever drops a finished one
    // counts it, in the same write.
    (void)modify_shard(*kv_, shards_[static_cast<std::size_t>(shard)], shard, [&](nlohmann::json& current) {
      bool changed = false;
      for (const auto& [id, seen] : stale) {
        auto it = current.find(id);
        if (it != current.end() && indexed_at(*it) == seen.first) {
          current.erase(it);
          if (seen.second) add_finished(current, *seen.second);
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
  // Reads an "active.meta" value; true when it has the totals of the sagas
  // that finished before the bucket was indexed (taken into
  // indexed_finished_).
  auto take_meta = [&](const std::string& value) -> Result<bool> {
    auto j = nlohmann::json::parse(value, nullptr, false);
    if (!j.is_object() || j.value("shards", 0) != kIndexShards) {
      return make_error(errc::malformed, "saga bucket index '" + std::string(kIndexMeta) + "' is " + value +
                                             ", expected {\"shards\":" + std::to_string(kIndexShards) + ",...}");
    }
    if (!j.contains("finished")) return false;
    indexed_finished_ = SagaCounts{};
    read_finished(j["finished"], indexed_finished_);
    return true;
  };
  if (*meta) {
    auto has_totals = take_meta((*meta)->value);
    if (!has_totals) return std::move(has_totals).error();
    if (*has_totals) {
      indexed_ = true;
      return {};
    }
    // Indexed by a version that kept no totals: scanned once more, for them.
  }
  // A new bucket, or one written before the index (or its totals) existed:
  // index its active sagas and count its finished ones, once (a full scan,
  // the last one).
  auto ids = list_all();
  if (!ids) return std::move(ids).error();
  std::map<int, std::vector<std::string>> by_shard;
  SagaCounts finished;
  for (const auto& id : *ids) {
    auto s = load(id);
    if (!s && s.error().code != "not_found" && s.error().code != errc::malformed) return std::move(s).error();
    if (!s) continue;
    if (is_final(s->record.status)) {
      detail::count_finished(finished, s->record.status);
    } else {
      by_shard[shard_of(id)].push_back(id);
    }
  }
  const auto now = unix_ms_now();
  for (const auto& [shard, add] : by_shard) {
    auto s = modify_shard(*kv_, shards_[static_cast<std::size_t>(shard)], shard, [&](nlohmann::json& current) {
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
  const std::string value = nlohmann::json{{"shards", kIndexShards}, {"finished", finished_json(finished)}}.dump();
  auto written = *meta ? kv_->update(kIndexMeta, value, (*meta)->revision) : kv_->create(kIndexMeta, value);
  if (written) {
    indexed_finished_ = finished;
  } else {
    if (written.error().code != errc::conflict) return std::move(written).error();
    // Another store wrote it first: its totals count.
    auto again = kv_->get(kIndexMeta);
    if (!again) return std::move(again).error();
    if (*again) {
      auto has_totals = take_meta((*again)->value);
      if (!has_totals) return std::move(has_totals).error();
    }
  }
  indexed_ = true;
  return {};
}

}  // namespace catga
