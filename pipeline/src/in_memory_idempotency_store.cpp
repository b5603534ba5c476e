#include "catga/pipeline/in_memory_idempotency_store.hpp"

#include <algorithm>
#include <array>
#include <atomic>
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

// Binary keys (message ids): two folded multiplies, no loop.
std::uint64_t hash_of(std::uint64_t hi, std::uint64_t lo) noexcept {
  constexpr std::uint64_t kA = 0x9e3779b97f4a7c15ULL;
  constexpr std::uint64_t kB = 0xd6e8feb86659fd93ULL;
  const std::uint64_t seed = hash_seed();
  return fold_mul(fold_mul(hi ^ seed ^ kA, lo ^ seed ^ kB) ^ kA, 0x8bb84b93962eacc9ULL);
}

// True for exactly 32 lowercase hex digits: the text MessageId gives a binary
// id, held as 128 bits here so the text and binary forms are one key.
bool binary_key_text(std::string_view s, std::uint64_t& hi, std::uint64_t& lo) noexcept {
  if (s.size() != 32) return false;
  std::uint64_t parts[2] = {0, 0};
  for (std::size_t i = 0; i < 32; ++i) {
    const char c = s[i];
    std::uint64_t d;
    if (c >= '0' && c <= '9') {
      d = static_cast<std::uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<std::uint64_t>(c - 'a' + 10);
    } else {
      return false;
    }
    parts[i / 16] = (parts[i / 16] << 4) | d;
  }
  hi = parts[0];
  lo = parts[1];
  return true;
}

// Frees what a stored value holds. Values holding no memory (numbers,
// booleans) stay: an entry's value is only read once it is completed, and
// completing always sets it, so the json destructor is skipped for them.
void drop_memory(nlohmann::json& j) noexcept {
  if (j.is_structured() || j.is_string() || j.is_binary()) j = nullptr;
}

// Sets a value that may hold a leftover number to null.
void set_null(nlohmann::json& j) noexcept {
  if (!j.is_null()) j = nullptr;
}

Clock::time_point add_saturated(Clock::time_point t, Clock::duration d) noexcept {
  return d >= Clock::time_point::max() - t ? Clock::time_point::max() : t + d;
}

Error lost_claim(std::string_view key) {
  return make_error(errc::conflict,
                    "idempotency claim on '" + std::string(key) + "' was lost (released, or its lease expired)");
}

// The lock of a shard. Uncontended lock and unlock are one inline atomic
// instruction each (std::mutex costs two pthread calls per pair, a third of
// the store's work per message); contended lockers spin briefly, then sleep
// in the kernel through C++20 atomic wait (a futex on Linux).
// States: 0 free, 1 held, 2 held and someone may sleep.
class ShardLock {
 public:
  void lock() noexcept {
    int expected = 0;
    if (!state_.compare_exchange_strong(expected, 1, std::memory_order_acquire, std::memory_order_relaxed))
        [[unlikely]] {
      lock_contended(expected);
    }
  }
  void unlock() noexcept {
    if (state_.exchange(0, std::memory_order_release) == 2) [[unlikely]] state_.notify_one();
  }

 private:
  [[gnu::noinline]] void lock_contended(int seen) noexcept {
    // Holders keep the lock for well under a microsecond: a short spin
    // usually wins without a system call.
    for (int spin = 0; spin < 40 && seen == 1; ++spin) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
      seen = 0;
      if (state_.compare_exchange_weak(seen, 1, std::memory_order_acquire, std::memory_order_relaxed)) return;
    }
    if (seen != 2) seen = state_.exchange(2, std::memory_order_acquire);
    while (seen != 0) {
      state_.wait(2, std::memory_order_relaxed);
      seen = state_.exchange(2, std::memory_order_acquire);
    }
  }

  std::atomic<int> state_{0};
};

// A key as the table compares it: 128 bits, or text.
struct Key {
  std::string_view text;  // unused when binary
  std::uint64_t hi = 0;
  std::uint64_t lo = 0;
  bool binary = false;

  static Key of(std::string_view text) noexcept {
    Key k;
    k.binary = binary_key_text(text, k.hi, k.lo);
    if (!k.binary) k.text = text;
    return k;
  }
  std::uint64_t hash() const noexcept { return binary ? hash_of(hi, lo) : hash_of(text); }
};

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

}  // namespace

struct alignas(64) InMemoryIdempotencyStore::Shard {
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
    drop_memory(e.value);  // drop large values now
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
      drop_memory(e.value);
      drop_error(i);
    }
    e.state = Entry::State::claimed;
    e.token = ++next_token;
    e.expires = add_saturated(now, lease);
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
      e.expires = add_saturated(now, ttl);
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

InMemoryIdempotencyStore::InMemoryIdempotencyStore(InMemoryIdempotencyStoreOptions options)
    : options_(std::move(options)) {
  if (!options_.clock) options_.clock = Clock::system();
  system_clock_ = dynamic_cast<const SystemClock*>(options_.clock.get());
  options_.max_entries = std::clamp<std::size_t>(options_.max_entries, 1, kNil / 2);
  if (options_.shards == 0) options_.shards = std::clamp<std::size_t>(options_.max_entries / 1024, 1, 16);
  options_.shards = std::min(options_.shards, options_.max_entries);
  shard_bound_ = std::max<std::size_t>(1, options_.max_entries / options_.shards);
  shards_ = std::make_unique<Shard[]>(options_.shards);
}

InMemoryIdempotencyStore::~InMemoryIdempotencyStore() = default;

// Inline: only this file calls it, on every operation.
inline InMemoryIdempotencyStore::Shard& InMemoryIdempotencyStore::shard_for(std::uint64_t hash) const noexcept {
  // Bits 32..63 scaled to [0, shards): no division on the hot path.
  return shards_[((hash >> 32) * options_.shards) >> 32];
}

Result<IdempotencyClaim> InMemoryIdempotencyStore::claim(std::string_view text, duration lease) {
  const Key key = Key::of(text);
  const std::uint64_t hash = key.hash();
  Shard& s = shard_for(hash);
  const auto now = coarse_now();
  std::lock_guard lock(s.mutex);
  return s.claim(key, hash, now, lease);
}

IdempotencyIdPath::Claim InMemoryIdempotencyStore::claim_id(std::uint64_t hi, std::uint64_t lo, duration lease) {
  Key key;
  key.hi = hi;
  key.lo = lo;
  key.binary = true;
  const std::uint64_t hash = key.hash();
  Shard& s = shard_for(hash);
  // Generated ids count up (MessageId::generate), so the sender's next id is
  // most likely lo + 1: start loading the slots it will probe, a whole
  // dispatch ahead, so the next claim does not wait for memory. A wrong guess
  // costs one cache line read.
  const std::uint64_t guess = hash_of(hi, lo + 1);
  shard_for(guess).hint(guess);
  std::lock_guard lock(s.mutex);
  s.prefetch(hash);  // the clock read below overlaps the likely cache miss
  const auto now = coarse_now();
  Index i = kNil;
  const auto state = s.claim_index(key, hash, now, lease, i);
  return Claim{state, s.entries[i].token, static_cast<std::uint32_t>(&s - shards_.get()), i};
}

Status InMemoryIdempotencyStore::complete_id(const Claim& c, const Error* error, EncodeResult encode,
                                             const void* result, duration ttl) {
  Shard& s = shards_[c.where_a];
  const Index index = c.where_b;
  const auto now = coarse_now();
  std::lock_guard lock(s.mutex);
  if (index >= s.entries.size() || s.entries[index].state != Entry::State::claimed ||
      s.entries[index].token != c.token) {
    return make_error(errc::conflict, "idempotency claim was lost (released, or its lease expired)");
  }
  s.complete(index, now, ttl, shard_bound_, [&](Index i) {
    nlohmann::json& value = s.entries[i].value;
    if (error == nullptr && encode != nullptr && result != nullptr) {
      encode(value, result);
    } else {
      set_null(value);
      if (error != nullptr) s.set_error(i, *error);
    }
  });
  return {};
}

void InMemoryIdempotencyStore::release_id(const Claim& c) noexcept {
  Shard& s = shards_[c.where_a];
  const Index index = c.where_b;
  std::lock_guard lock(s.mutex);
  if (index < s.entries.size() && s.entries[index].state == Entry::State::claimed &&
      s.entries[index].token == c.token) {
    s.erase(index);
    s.wake();
  }
}

Result<IdempotencyClaim> InMemoryIdempotencyStore::wait(std::string_view text, duration lease, time_point deadline) {
  const Key key = Key::of(text);
  const std::uint64_t hash = key.hash();
  Shard& s = shard_for(hash);
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

Status InMemoryIdempotencyStore::complete(std::string_view text, std::uint64_t token, IdempotencyOutcome outcome,
                                          duration ttl) {
  const Key key = Key::of(text);
  const std::uint64_t hash = key.hash();
  Shard& s = shard_for(hash);
  const auto now = coarse_now();
  std::lock_guard lock(s.mutex);
  const Index i = s.find(key, hash);
  if (i == kNil || s.entries[i].state != Entry::State::claimed || s.entries[i].token != token) return lost_claim(text);
  s.complete(i, now, ttl, shard_bound_, [&](Index at) {
    if (outcome.error) s.set_error(at, std::move(*outcome.error));
    nlohmann::json& value = s.entries[at].value;
    set_null(value);
    if (!outcome.value.is_null()) value.swap(outcome.value);  // swap makes no temporary
  });
  return {};
}

Status InMemoryIdempotencyStore::release(std::string_view text, std::uint64_t token) {
  const Key key = Key::of(text);
  const std::uint64_t hash = key.hash();
  Shard& s = shard_for(hash);
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
    s.publish_slots();
    s.entries.clear();
    s.cold.clear();
    s.live = 0;
    s.free_head = s.oldest = s.newest = kNil;
    s.cv.notify_all();
  }
}

}  // namespace catga
