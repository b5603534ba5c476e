#pragma once
// PendingTable: what each in-flight async publish waits for, by message.

#include <nats/nats.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace catga::nats::detail {

// A fixed-capacity map from natsMsg* to V (open addressing, linear probing,
// deletion by backward shift): sized once for the publish window, it never
// allocates on insert or erase, unlike a node-based map. Not thread-safe.
//
//   PendingTable<Callback> t(4096);   // at most 4096 entries at once
//   t.insert(msg, std::move(cb));     // false when full
//   std::optional<Callback> cb = t.take(msg);
template <class V>
class PendingTable {
 public:
  explicit PendingTable(std::size_t max_entries) {
    std::size_t cap = 16;
    while (cap < max_entries * 2) cap *= 2;  // at most half full: short probes
    slots_.resize(cap);
    max_ = max_entries;
  }

  std::size_t size() const noexcept { return size_; }

  // False when `key` is null, already present, or the table holds max_entries.
  bool insert(natsMsg* key, V value) {
    if (key == nullptr || size_ >= max_) return false;
    for (std::size_t i = home(key);; i = next(i)) {
      if (slots_[i].key == key) return false;
      if (slots_[i].key == nullptr) {
        slots_[i].key = key;
        slots_[i].value = std::move(value);
        ++size_;
        return true;
      }
    }
  }

  // Removes `key` and returns its value; nullopt when absent.
  std::optional<V> take(natsMsg* key) {
    if (key == nullptr) return std::nullopt;
    std::size_t i = home(key);
    while (slots_[i].key != key) {
      if (slots_[i].key == nullptr) return std::nullopt;
      i = next(i);
    }
    std::optional<V> out(std::move(slots_[i].value));
    slots_[i].value = V{};
    slots_[i].key = nullptr;
    --size_;
    // Backward shift: move later entries of the probe run into the hole, so
    // lookups never stop early at it.
    for (std::size_t hole = i, j = next(i); slots_[j].key != nullptr; j = next(j)) {
      const std::size_t want = home(slots_[j].key);
      // j's entry may move to the hole unless its home lies in (hole, j].
      const bool stays = hole <= j ? (hole < want && want <= j) : (hole < want || want <= j);
      if (stays) continue;
      slots_[hole].key = slots_[j].key;
      slots_[hole].value = std::move(slots_[j].value);
      slots_[j].value = V{};
      slots_[j].key = nullptr;
      hole = j;
    }
    return out;
  }

 private:
  struct Slot {
    natsMsg* key = nullptr;
    V value{};
  };
  std::size_t home(natsMsg* key) const noexcept {
    const auto h = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(key)) * 0x9e3779b97f4a7c15ULL;
    return static_cast<std::size_t>(h >> 32) & (slots_.size() - 1);
  }
  std::size_t next(std::size_t i) const noexcept { return (i + 1) & (slots_.size() - 1); }

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
  std::size_t max_ = 0;
};

}  // namespace catga::nats::detail
