#pragma once
// What one InMemoryIdempotencyStore shard holds per key: the hot Entry (one
// cache line), its ColdEntry (key text, remembered failure) and the Slot of
// its hash table, with the small helpers on stored values. Private to
// catga::pipeline.

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "catga/pipeline/clock.hpp"
#include "catga/result.hpp"

namespace catga::idempotency_detail {

using Index = std::uint32_t;
inline constexpr Index kNil = ~Index{0};

// Frees what a stored value holds. Values holding no memory (numbers,
// booleans) stay: an entry's value is only read once it is completed, and
// completing always sets it, so the json destructor is skipped for them.
inline void drop_memory(nlohmann::json& j) noexcept {
  if (j.is_structured() || j.is_string() || j.is_binary()) j = nullptr;
}

// Sets a value that may hold a leftover number to null.
inline void set_null(nlohmann::json& j) noexcept {
  if (!j.is_null()) j = nullptr;
}

inline Clock::time_point add_saturated(Clock::time_point t, Clock::duration d) noexcept {
  return d >= Clock::time_point::max() - t ? Clock::time_point::max() : t + d;
}

// One key: a claim in progress or a completed outcome, in one cache line
// (a lookup, a claim, a completion and an eviction each touch one line per
// entry). Entries live in a vector and are recycled through a free list, so
// a steady stream of new keys allocates nothing. A 128-bit key (a generated
// message id) is held here; a text key and a remembered failure live in the
// shard's ColdEntry of the same index, which binary keys never touch.
struct alignas(64) Entry {
  enum class State : std::uint8_t { free, claimed, completed };
  static constexpr std::uint8_t kBinaryKey = 1;  // key_hi/key_lo are the key
  static constexpr std::uint8_t kHasError = 2;   // ColdEntry::error is set

  std::uint64_t key_hi = 0;
  std::uint64_t key_lo = 0;
  std::uint64_t token = 0;
  // Lease end while claimed, TTL end once completed (store clock).
  Clock::time_point expires{};
  Index prev = kNil;  // completed entries form a list, oldest first
  Index next = kNil;  // (also the free list link)
  // The low half of the key's hash: slot positions use no more bits.
  std::uint32_t hash = 0;
  State state = State::free;
  std::uint8_t flags = 0;
  nlohmann::json value;  // stored result (null for void)
};
static_assert(sizeof(Entry) == 64, "an entry is one cache line");

// The rarely used part of an entry: the key text (inline up to kInlineKey
// bytes: a message id with a short handler prefix) and a remembered failure.
struct ColdEntry {
  static constexpr std::size_t kInlineKey = 56;

  std::array<char, kInlineKey> key_chars;
  std::uint8_t key_size = 0;  // kInlineKey + 1: in long_key
  std::unique_ptr<std::string> long_key;
  std::unique_ptr<Error> error;

  std::string_view key() const noexcept {
    return key_size <= kInlineKey ? std::string_view(key_chars.data(), key_size) : std::string_view(*long_key);
  }
  void set_key(std::string_view k) {
    if (k.size() <= kInlineKey) {
      std::memcpy(key_chars.data(), k.data(), k.size());
      key_size = static_cast<std::uint8_t>(k.size());
      long_key.reset();
    } else {
      long_key = std::make_unique<std::string>(k);
      key_size = kInlineKey + 1;
    }
  }
};

// Open addressing with linear probing. A slot holds the low 32 bits of the
// hash (which also give its home position) and the entry index: 8 bytes, so a
// lookup of a new key touches one cache line of slots and no entry.
struct Slot {
  std::uint32_t hash = 0;
  Index index = kNil;  // kNil: empty
};

}  // namespace catga::idempotency_detail
