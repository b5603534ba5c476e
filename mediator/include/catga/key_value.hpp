#pragma once
// KeyValue: a revisioned key-value bucket (the port behind saga state,
// service state and idempotency records). Implementations: InMemoryKeyValue
// (tests, one process) and the JetStream KV bucket in catga::nats.

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catga/result.hpp"

namespace catga {

// A value and the revision it was stored at (revisions only grow).
struct KvEntry {
  std::string value;
  std::uint64_t revision = 0;
};

// Keys are NATS-subject-like tokens: letters, digits, '-', '_', '=', '/', '.'
// (dots separate levels). Writes that name a revision fail with code
// `conflict` (retryable) when another writer got there first, which is what
// makes read-modify-write safe across replicas.
//
//   auto e = kv.get("stock.A-1").value();                 // std::optional<KvEntry>
//   int stock = e ? std::stoi(e->value) : 0;
//   auto r = kv.update("stock.A-1", std::to_string(stock - 2), e->revision);
//   if (!r && r.error().code == catga::errc::conflict) { /* reload and retry */ }
class KeyValue {
 public:
  virtual ~KeyValue() = default;
  // The entry, or nullopt when the key is absent (or deleted).
  virtual Result<std::optional<KvEntry>> get(std::string_view key) = 0;
  // Stores a new key; `conflict` when it exists.
  virtual Result<std::uint64_t> create(std::string_view key, std::string_view value) = 0;
  // Replaces the value if the key is still at `expected_revision`.
  virtual Result<std::uint64_t> update(std::string_view key, std::string_view value,
                                       std::uint64_t expected_revision) = 0;
  // Stores unconditionally.
  virtual Result<std::uint64_t> put(std::string_view key, std::string_view value) = 0;
  // Removes the key (absent keys are fine).
  virtual Status erase(std::string_view key) = 0;
  // Keys starting with `prefix` (all keys for an empty prefix), sorted.
  virtual Result<std::vector<std::string>> keys(std::string_view prefix = {}) = 0;
};

// Read-modify-write with retries on conflict: `change(current)` returns the
// new value (or an Error to stop); current is nullopt for an absent key.
//
//   auto s = catga::kv_modify(kv, "stock.A-1", [](const std::optional<std::string>& v)
//       -> catga::Result<std::string> { return std::to_string(std::stoi(v.value_or("0")) + 5); });
template <class F>
Result<std::uint64_t> kv_modify(KeyValue& kv, std::string_view key, F&& change, int max_attempts = 50) {
  for (int attempt = 0; attempt < max_attempts; ++attempt) {
    auto current = kv.get(key);
    if (!current) return std::move(current).error();
    std::optional<std::string> old;
    if (*current) old = (*current)->value;
    Result<std::string> next = change(std::as_const(old));
    if (!next) return std::move(next).error();
    auto written = *current ? kv.update(key, *next, (*current)->revision) : kv.create(key, *next);
    if (written || written.error().code != errc::conflict) return written;
  }
  return make_error(errc::conflict, "key '" + std::string(key) + "' kept changing under us", true);
}

// A KeyValue in process memory. Thread-safe.
//
//   auto kv = std::make_shared<catga::InMemoryKeyValue>();
class InMemoryKeyValue final : public KeyValue {
 public:
  Result<std::optional<KvEntry>> get(std::string_view key) override;
  Result<std::uint64_t> create(std::string_view key, std::string_view value) override;
  Result<std::uint64_t> update(std::string_view key, std::string_view value, std::uint64_t expected_revision) override;
  Result<std::uint64_t> put(std::string_view key, std::string_view value) override;
  Status erase(std::string_view key) override;
  Result<std::vector<std::string>> keys(std::string_view prefix = {}) override;

 private:
  std::mutex mutex_;
  std::uint64_t revision_ = 0;  // bucket-wide, like a JetStream KV stream sequence
  std::map<std::string, KvEntry, std::less<>> entries_;
};

}  // namespace catga
