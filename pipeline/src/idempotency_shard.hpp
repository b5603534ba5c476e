#pragma once
// InMemoryIdempotencyStore::Shard: one lock domain of the store, an
// open-addressing table of entries with a list of completed ones, oldest
// first (eviction) and the condition variable wait() sleeps on. Private to
// catga::pipeline; only in_memory_idempotency_store.cpp includes it.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <vector>

#include "catga/pipeline/in_memory_idempotency_store.hpp"
#include "idempotency_entry.hpp"
#include "idempotency_key.hpp"
#include "shard_lock.hpp"

namespace catga {

struct alignas(64) InMemoryIdempotencyStore::Shard {
  using ColdEntry = idempotency_detail::ColdEntry;
  using Entry = idempotency_detail::Entry;
  using Index = idempotency_detail::Index;
  using Key = idempotency_detail::Key;
  using ShardLock = idempotency_detail::ShardLock;
  using Slot = idempotency_detail::Slot;
  static constexpr Index kNil = idempotency_detail::kNil;

  ShardLock mutex;
  std::condition_variable_any cv;
  std::vector<Slot> slots = std::vector<Slot>(16);  // size is a power of two
  std::vector<Entry> entries;
  // ColdEntry of entries[i] at cold[i]; only as long as the highest index
  // that ever held a text key or a failure.
  std::vector<ColdEntry> cold;
  std::size_t live = 0;  // claimed + completed
  Index free_head = kNil;
  Index oldest = kNil;
  Index newest = kNil;
  std::uint64_t next_token = 0;
  int waiters = 0;
  // Where `slots` is, for prefetch hints from threads not holding the lock
  // (an address as a number: a hint may use a stale one, which is harmless).
  std::atomic<std::uintptr_t> slots_at{0};
  std::atomic<std::size_t> slots_mask{0};

  Shard() { publish_slots(); }

  std::size_t mask() const noexcept { return slots.size() - 1; }

  void publish_slots() noexcept {
    slots_at.store(reinterpret_cast<std::uintptr_t>(slots.data()), std::memory_order_relaxed);
    slots_mask.store(mask(), std::memory_order_relaxed);
  }

  // Starts loading the slots a lookup of `hash` will read; needs no lock.
  void hint(std::uint64_t hash) const noexcept {
    const std::uintptr_t at =
        slots_at.load(std::memory_order_relaxed) + (hash & slots_mask.load(std::memory_order_relaxed)) * sizeof(Slot);
    __builtin_prefetch(reinterpret_cast<const void*>(at));
  }

  ColdEntry& cold_of(Index i) {
    if (i >= cold.size()) cold.resize(std::max<std::size_t>(i + 1, entries.size()));
    return cold[i];
  }

  bool matches(Index i, const Key& k) const noexcept {
    const Entry& e = entries[i];
    if ((e.flags & Entry::kBinaryKey) != 0) return k.binary && e.key_hi == k.hi && e.key_lo == k.lo;
    return !k.binary && i < cold.size() && cold[i].key() == k.text;
  }

  void set_key(Index i, const Key& k) {
    Entry& e = entries[i];
    if (k.binary) {
      e.key_hi = k.hi;
      e.key_lo = k.lo;
      e.flags |= Entry::kBinaryKey;
    } else {
      cold_of(i).set_key(k.text);
      e.flags &= static_cast<std::uint8_t>(~Entry::kBinaryKey);
    }
  }

  void set_error(Index i, Error error) {
    cold_of(i).error = std::make_unique<Error>(std::move(error));
    entries[i].flags |= Entry::kHasError;
  }

  void drop_error(Index i) noexcept {
    Entry& e = entries[i];
    if ((e.flags & Entry::kHasError) != 0) {
      cold[i].error.reset();
      e.flags &= static_cast<std::uint8_t>(~Entry::kHasError);
    }
  }

  IdempotencyOutcome outcome(Index i) const {
    IdempotencyOutcome o;
    o.value = entries[i].value;
    if ((entries[i].flags & Entry::kHasError) != 0) o.error = *cold[i].error;
    return o;
  }

  Index find(const Key& key, std::uint64_t hash) const noexcept {
    std::size_t empty;
    return find(key, hash, empty);
  }

  // Also gives, when the key is absent, the empty slot that ended the probe
  // (where place() would put it).
  Index find(const Key& key, std::uint64_t hash, std::size_t& empty) const noexcept {
    const std::size_t m = mask();
    for (std::size_t i = hash & m;; i = (i + 1) & m) {
      const Slot& s = slots[i];
      if (s.index == kNil) {
        empty = i;
        return kNil;
      }
      if (s.hash == static_cast<std::uint32_t>(hash) && matches(s.index, key)) return s.index;
    }
  }

  // Starts loading the cache line a lookup of `hash` reads first.
  void prefetch(std::uint64_t hash) const noexcept { __builtin_prefetch(&slots[hash & mask()]); }

  void place(std::uint64_t hash, Index index) noexcept {
    const std::size_t m = mask();
    std::size_t i = hash & m;
    while (slots[i].index != kNil) i = (i + 1) & m;
    slots[i] = Slot{static_cast<std::uint32_t>(hash), index};
  }

  // Removes the slot of entry `index` (backward-shift deletion: no tombstones,
  // so probe sequences stay short however many keys come and go).
  void unplace(Index index) noexcept {
    const std::size_t m = mask();
    Slot* const slot = slots.data();
    std::size_t hole = entries[index].hash & m;
    while (slot[hole].index != index) hole = (hole + 1) & m;
    for (std::size_t k = (hole + 1) & m; slot[k].index != kNil; k = (k + 1) & m) {
      const std::size_t home = slot[k].hash & m;
      // Move k into the hole unless its home lies cyclically in (hole, k].
      if (((k - home) & m) >= ((k - hole) & m)) {
        slot[hole] = slot[k];
        hole = k;
      }
    }
    slot[hole] = Slot{};
  }

  void grow() {
    std::vector<Slot> old(slots.size() * 2);
    old.swap(slots);
    for (const Slot& s : old) {
      if (s.index != kNil) place(s.hash, s.index);
    }
    publish_slots();
  }

  void unlink(Index i) noexcept {
    Entry& e = entries[i];
    (e.prev != kNil ? entries[e.prev].next : oldest) = e.next;
    (e.next != kNil ? entries[e.next].prev : newest) = e.prev;
    e.prev = e.next = kNil;
  }

  void link_newest(Index i) noexcept {
    Entry& e = entries[i];
    e.prev = newest;
    e.next = kNil;
    (newest != kNil ? entries[newest].next : oldest) = i;
    newest = i;
  }

  void erase(Index i) noexcept {
    Entry& e = entries[i];
    if (e.state == Entry::State::completed) unlink(i);
    unplace(i);
    e.state = Entry::State::free;
    idempotency_detail::drop_memory(e.value);  // drop large values now
    drop_error(i);
    e.next = free_head;
    free_head = i;
    --live;
  }

  // Turns entry `i` into a fresh claim.
  IdempotencyClaim own(Index i, Clock::time_point now, Clock::duration lease) {
    Entry& e = entries[i];
    if (e.state == Entry::State::completed) {
      unlink(i);
      idempotency_detail::drop_memory(e.value);
      drop_error(i);
    }
    e.state = Entry::State::claimed;
    e.token = ++next_token;
    e.expires = idempotency_detail::add_saturated(now, lease);
    return IdempotencyClaim{IdempotencyClaim::State::claimed, e.token, std::nullopt};
  }

  // claim() under the lock.
  IdempotencyClaim claim(const Key& key, std::uint64_t hash, Clock::time_point now, Clock::duration lease) {
    Index i = kNil;
    const auto state = claim_index(key, hash, now, lease, i);
    if (state == IdempotencyClaim::State::completed) return IdempotencyClaim{state, entries[i].token, outcome(i)};
    IdempotencyClaim c{state, entries[i].token, std::nullopt};
    if (state == IdempotencyClaim::State::in_progress) c.lease_left = entries[i].expires - now;
    return c;
  }

  // claim() without copying an outcome: the state, and in `i` the entry.
  // Inlined into its two callers: the call and its register saves were a
  // tenth of the fast path's claim.
  [[gnu::always_inline]] IdempotencyClaim::State claim_index(const Key& key, std::uint64_t hash, Clock::time_point now,
                                                             Clock::duration lease, Index& i) {
    std::size_t slot;
    if (i = find(key, hash, slot); i != kNil) {
      const Entry& e = entries[i];
      if (now < e.expires) {
        return e.state == Entry::State::completed ? IdempotencyClaim::State::completed
                                                  : IdempotencyClaim::State::in_progress;
      }
      own(i, now, lease);  // expired outcome or abandoned claim
      return IdempotencyClaim::State::claimed;
    }
    bool grown = false;
    if ((live + 1) * 2 > slots.size()) {  // load factor <= 1/2
      grow();
      grown = true;
    }
    if (free_head == kNil) {
      free_head = static_cast<Index>(entries.size());
      entries.emplace_back();
    }
    i = free_head;
    set_key(i, key);  // may throw (a long text key): the entry stays free
    free_head = entries[i].next;
    Entry& e = entries[i];
    e.hash = static_cast<std::uint32_t>(hash);
    e.prev = e.next = kNil;
    ++live;
    if (grown) {
      place(hash, i);
    } else {
      slots[slot] = Slot{static_cast<std::uint32_t>(hash), i};  // the probe above ended here
    }
    own(i, now, lease);
    return IdempotencyClaim::State::claimed;
  }

  // Marks claimed entry `i` completed with what `fill(i)` puts into it.
  template <class Fill>
  void complete(Index i, Clock::time_point now, Clock::duration ttl, std::size_t bound, Fill&& fill) {
    if (ttl <= Clock::duration::zero()) {
      erase(i);  // nothing to remember
    } else {
      fill(i);  // first: if it throws, the entry is still a plain claim
      Entry& e = entries[i];
      e.state = Entry::State::completed;
      e.expires = idempotency_detail::add_saturated(now, ttl);
      link_newest(i);
    }
    evict(bound, now);
    wake();
  }

  void evict(std::size_t bound, Clock::time_point now) noexcept {
    while (oldest != kNil && (live > bound || entries[oldest].expires <= now)) erase(oldest);
    // The next entry to go was just touched (unlink); start loading the slot
    // its eviction will rewrite and the entry its unlink will touch, so
    // those misses overlap other work instead of stalling the next eviction.
    if (oldest != kNil) {
      const Entry& o = entries[oldest];
      prefetch(o.hash);
      if (o.next != kNil) __builtin_prefetch(&entries[o.next]);
    }
  }

  void wake() {
    if (waiters > 0) cv.notify_all();
  }
};

}  // namespace catga
