#include "catga/key_value.hpp"

namespace catga {

Result<std::optional<KvEntry>> InMemoryKeyValue::get(std::string_view key) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::optional<KvEntry>();
  return std::optional<KvEntry>(it->second);
}

Result<std::uint64_t> InMemoryKeyValue::create(std::string_view key, std::string_view value) {
  std::lock_guard lock(mutex_);
  auto [it, inserted] = entries_.try_emplace(std::string(key));
  if (!inserted) return make_error(errc::conflict, "key '" + std::string(key) + "' exists", true);
  it->second = KvEntry{std::string(value), ++revision_};
  return it->second.revision;
}

Result<std::uint64_t> InMemoryKeyValue::update(std::string_view key, std::string_view value,
                                               std::uint64_t expected_revision) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.revision != expected_revision) {
    return make_error(errc::conflict, "key '" + std::string(key) + "' is not at revision " +
                                          std::to_string(expected_revision), true);
  }
  it->second = KvEntry{std::string(value), ++revision_};
  return it->second.revision;
}

Result<std::uint64_t> InMemoryKeyValue::put(std::string_view key, std::string_view value) {
  std::lock_guard lock(mutex_);
  auto& e = entries_[std::string(key)];
  e = KvEntry{std::string(value), ++revision_};
  return e.revision;
}

Status InMemoryKeyValue::erase(std::string_view key) {
  std::lock_guard lock(mutex_);
  if (auto it = entries_.find(key); it != entries_.end()) entries_.erase(it);
  return {};
}

Result<std::vector<std::string>> InMemoryKeyValue::keys(std::string_view prefix) {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (auto it = entries_.lower_bound(prefix); it != entries_.end(); ++it) {
    if (it->first.compare(0, prefix.size(), prefix) != 0) break;
    out.push_back(it->first);
  }
  return out;
}

}  // namespace catga
