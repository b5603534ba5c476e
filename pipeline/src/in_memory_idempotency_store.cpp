#include "catga/pipeline/in_memory_idempotency_store.hpp"

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace catga {
namespace {

using SteadyClock = std::chrono::steady_clock;
using Index = std::uint32_t;
constexpr Index kNil = ~Index{0};

// A per-process random seed, so keys chosen by remote senders cannot be
// crafted to collide.
std::uint64_t hash_seed() noexcept {
  static const std::uint64_t seed = [] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }();
  return seed;
}

__extension__ typedef unsigned __int128 U128;

// 64x64 -> 128-bit multiply, folded: one instruction on x86-64 and arm64,
// and every input bit reaches every output bit.
std::uint64_t fold_mul(std::uint64_t a, std::uint64_t b) noexcept {
  const U128 r = static_cast<U128>(a) * b;
  return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}

std::uint64_t read64(const char* p) noexcept {
  std::uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

// Keys are short (a message id is 32 bytes), so a hash taking 16 bytes per
// folded multiply is several times cheaper than std::hash here.
std::uint64_t hash_of(std::string_view s) noexcept {
  constexpr std::uint64_t kA = 0x9e3779b97f4a7c15ULL;
  constexpr std::uint64_t kB = 0xd6e8feb86659fd93ULL;
  // The seed is in both factors, so no key can zero one of them on purpose.
  const std::uint64_t seed = hash_seed();
  const char* p = s.data();
  std::size_t n = s.size();
  std::uint64_t h = seed ^ (n * kB);
  for (; n >= 16; p += 16, n -= 16) h = fold_mul(read64(p) ^ h ^ kA, read64(p + 8) ^ seed ^ kB);
  if (n > 0) {
    char tail[16] = {};
    std::memcpy(tail, p, n);
    h = fold_mul(read64(tail) ^ h ^ kA, read64(tail + 8) ^ seed ^ kB);
  }
  return fold_mul(h ^ kA, s.size() ^ 0x8bb84b93962eacc9ULL);
}

Clock::time_point add_saturated(Clock::time_point t, Clock::duration d) noexcept {
  return d >= Clock::time_point::max() - t ? Clock::time_point::max() : t + d;
}

Error lost_claim(std::string_view key) {
  return make_error(errc::conflict,
                    "idempotency claim on '" + std::string(key) + "' was lost (released, or its lease expired)");
}

// One key: a claim in progress or a completed outcome. Entries live in a
// vector and are recycled through a free list, so a steady stream of new
// keys allocates nothing. Two cache lines: the first holds what lookups,
// eviction and the common outcome (a small JSON value) touch, the second
// the key (inline up to kInlineKey bytes: a message id with a short handler
// prefix).
struct alignas(64) Entry {
  enum class State : std::uint8_t { free, claimed, completed };
  static constexpr std::size_t kInlineKey = 56;

  std::uint64_t hash = 0;
  std::uint64_t token = 0;
  // Lease end while claimed, TTL end once completed (store clock).
  Clock::time_point expires{};
  Index prev = kNil;  // completed entries form a list, oldest first
  Index next = kNil;  // (also the free list link)
  State state = State::free;
  std::uint8_t key_size = 0;     // > kInlineKey: the key is in long_key
  nlohmann::json value;          // stored result (null for void)
  std::unique_ptr<Error> error;  // only for remembered failures

  std::array<char, kInlineKey> key_chars;
  std::unique_ptr<std::string> long_key;

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
  IdempotencyOutcome outcome() const {
    IdempotencyOutcome o;
    o.value = value;
    if (error) o.error = *error;
    return o;
  }
};

// Open addressing with linear probing. A slot holds the low 32 bits of the
// hash (which also give its home position) and the entry index: 8 bytes, so a
// lookup of a new key touches one cache line of slots and no entry.
struct Slot {
  std::uint32_t hash = 0;
  Index index = kNil;  // kNil: empty
};

}  // namespace

struct alignas(64) InMemoryIdempotencyStore::Shard {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<Slot> slots = std::vector<Slot>(16);  // size is a power of two
  std::vector<Entry> entries;
  std::size_t live = 0;  // claimed + completed
  Index free_head = kNil;
  Index oldest = kNil;
  Index newest = kNil;
  std::uint64_t next_token = 0;
  int waiters = 0;

  std::size_t mask() const noexcept { return slots.size() - 1; }

  Index find(std::string_view key, std::uint64_t hash) const noexcept {
    for (std::size_t i = hash & mask();; i = (i + 1) & mask()) {
      const Slot& s = slots[i];
      if (s.index == kNil) return kNil;
      if (s.hash == static_cast<std::uint32_t>(hash) && entries[s.index].key() == key) return s.index;
    }
  }

  void place(std::uint64_t hash, Index index) noexcept {
    std::size_t i = hash & mask();
    while (slots[i].index != kNil) i = (i + 1) & mask();
    slots[i] = Slot{static_cast<std::uint32_t>(hash), index};
  }

  // Removes the slot of entry `index` (backward-shift deletion: no tombstones,
  // so probe sequences stay short however many keys come and go).
  void unplace(Index index) noexcept {
    std::size_t hole = entries[index].hash & mask();
    while (slots[hole].index != index) hole = (hole + 1) & mask();
    for (std::size_t k = (hole + 1) & mask(); slots[k].index != kNil; k = (k + 1) & mask()) {
      const std::size_t home = slots[k].hash & mask();
      // Move k into the hole unless its home lies cyclically in (hole, k].
      if (((k - home) & mask()) >= ((k - hole) & mask())) {
        slots[hole] = slots[k];
        hole = k;
      }
    }
    slots[hole] = Slot{};
  }

  void grow() {
    std::vector<Slot> old(slots.size() * 2);
    old.swap(slots);
    for (const Slot& s : old) {
      if (s.index != kNil) place(s.hash, s.index);
    }
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
    e.value = nullptr;  // drop large values now
    e.error.reset();
    e.next = free_head;
    free_head = i;
    --live;
  }

  // Turns entry `i` into a fresh claim.
  IdempotencyClaim own(Index i, Clock::time_point now, Clock::duration lease) {
    Entry& e = entries[i];
    if (e.state == Entry::State::completed) {
      unlink(i);
      e.value = nullptr;
      e.error.reset();
    }
    e.state = Entry::State::claimed;
    e.token = ++next_token;
    e.expires = add_saturated(now, lease);
    return IdempotencyClaim{IdempotencyClaim::State::claimed, e.token, std::nullopt};
  }

  // claim() under the lock.
  IdempotencyClaim claim(std::string_view key, std::uint64_t hash, Clock::time_point now, Clock::duration lease) {
    if (const Index i = find(key, hash); i != kNil) {
      const Entry& e = entries[i];
      if (now < e.expires) {
        if (e.state == Entry::State::completed) {
          return IdempotencyClaim{IdempotencyClaim::State::completed, e.token, e.outcome()};
        }
        return IdempotencyClaim{IdempotencyClaim::State::in_progress, e.token, std::nullopt};
      }
      return own(i, now, lease);  // expired outcome or abandoned claim
    }
    if ((live + 1) * 2 > slots.size()) grow();  // load factor <= 1/2
    Index i;
    if (free_head != kNil) {
      i = free_head;
      free_head = entries[i].next;
    } else {
      i = static_cast<Index>(entries.size());
      entries.emplace_back();
    }
    Entry& e = entries[i];
    e.set_key(key);
    e.hash = hash;
    e.prev = e.next = kNil;
    ++live;
    place(hash, i);
    return own(i, now, lease);
  }

  void evict(std::size_t bound, Clock::time_point now) noexcept {
    while (oldest != kNil && (live > bound || entries[oldest].expires <= now)) erase(oldest);
  }

  void wake() {
    if (waiters > 0) cv.notify_all();
  }
};

InMemoryIdempotencyStore::InMemoryIdempotencyStore(InMemoryIdempotencyStoreOptions options)
    : options_(std::move(options)) {
  if (!options_.clock) options_.clock = Clock::system();
  options_.max_entries = std::clamp<std::size_t>(options_.max_entries, 1, kNil / 2);
  if (options_.shards == 0) options_.shards = std::clamp<std::size_t>(options_.max_entries / 1024, 1, 16);
  options_.shards = std::min(options_.shards, options_.max_entries);
  shard_bound_ = std::max<std::size_t>(1, options_.max_entries / options_.shards);
  shards_ = std::make_unique<Shard[]>(options_.shards);
}

InMemoryIdempotencyStore::~InMemoryIdempotencyStore() = default;

InMemoryIdempotencyStore::Shard& InMemoryIdempotencyStore::shard_for(std::string_view key,
                                                                     std::size_t& hash) const noexcept {
  hash = hash_of(key);
  // Slots use the low bits; the high bits pick the shard.
  return shards_[(hash >> 48) % options_.shards];
}

Result<IdempotencyClaim> InMemoryIdempotencyStore::claim(std::string_view key, duration lease) {
  std::size_t hash;
  Shard& s = shard_for(key, hash);
  const auto now = options_.clock->coarse_now();
  std::lock_guard lock(s.mutex);
  return s.claim(key, hash, now, lease);
}

Result<IdempotencyClaim> InMemoryIdempotencyStore::wait(std::string_view key, duration lease, time_point deadline) {
  std::size_t hash;
  Shard& s = shard_for(key, hash);
  const Clock& clock = *options_.clock;

  // The condition variable waits in real time; an injected clock may not move
  // by itself, so its deadline is also turned into a real one, which bounds
  // the wait whatever the injected clock does.
  auto to_real = [&](time_point t) {
    const auto now = clock.now();
    const auto real_now = SteadyClock::now();
    if (t <= now) return real_now;
    return add_saturated(real_now, t - now);
  };
  const auto real_deadline = to_real(deadline);

  std::unique_lock lock(s.mutex);
  for (;;) {
    const auto now = clock.now();
    IdempotencyClaim c = s.claim(key, hash, now, lease);
    if (c.state != IdempotencyClaim::State::in_progress) return c;
    if (now >= deadline || SteadyClock::now() >= real_deadline) return c;
    // Wake at the deadline or when the owner's lease ends, whichever is first.
    auto wake = real_deadline;
    if (const Index i = s.find(key, hash); i != kNil) wake = std::min(wake, to_real(s.entries[i].expires));
    ++s.waiters;
    if (wake == SteadyClock::time_point::max()) {
      s.cv.wait(lock);
    } else {
      s.cv.wait_until(lock, wake);
    }
    --s.waiters;
  }
}

Status InMemoryIdempotencyStore::complete(std::string_view key, std::uint64_t token, IdempotencyOutcome outcome,
                                          duration ttl) {
  std::size_t hash;
  Shard& s = shard_for(key, hash);
  const auto now = options_.clock->coarse_now();
  std::lock_guard lock(s.mutex);
  const Index i = s.find(key, hash);
  if (i == kNil || s.entries[i].state != Entry::State::claimed || s.entries[i].token != token) return lost_claim(key);
  if (ttl <= duration::zero()) {
    s.erase(i);  // nothing to remember
  } else {
    Entry& e = s.entries[i];
    e.state = Entry::State::completed;
    e.expires = add_saturated(now, ttl);
    if (outcome.error) e.error = std::make_unique<Error>(std::move(*outcome.error));
    if (!outcome.value.is_null()) e.value.swap(outcome.value);  // e.value is null here; swap makes no temporary
    s.link_newest(i);
  }
  s.evict(shard_bound_, now);
  s.wake();
  return {};
}

Status InMemoryIdempotencyStore::release(std::string_view key, std::uint64_t token) {
  std::size_t hash;
  Shard& s = shard_for(key, hash);
  std::lock_guard lock(s.mutex);
  const Index i = s.find(key, hash);
  if (i != kNil && s.entries[i].state == Entry::State::claimed && s.entries[i].token == token) {
    s.erase(i);
    s.wake();
  }
  return {};
}

std::size_t InMemoryIdempotencyStore::size() const {
  std::size_t total = 0;
  for (std::size_t i = 0; i < options_.shards; ++i) {
    std::lock_guard lock(shards_[i].mutex);
    total += shards_[i].live;
  }
  return total;
}

void InMemoryIdempotencyStore::purge_expired() {
  const auto now = options_.clock->now();
  for (std::size_t i = 0; i < options_.shards; ++i) {
    Shard& s = shards_[i];
    std::lock_guard lock(s.mutex);
    for (Index e = s.oldest; e != kNil;) {
      const Index next = s.entries[e].next;
      if (s.entries[e].expires <= now) s.erase(e);
      e = next;
    }
  }
}

void InMemoryIdempotencyStore::clear() {
  for (std::size_t i = 0; i < options_.shards; ++i) {
    Shard& s = shards_[i];
    std::lock_guard lock(s.mutex);
    s.slots.assign(16, Slot{});
    s.entries.clear();
    s.live = 0;
    s.free_head = s.oldest = s.newest = kNil;
    s.cv.notify_all();
  }
}

}  // namespace catga
