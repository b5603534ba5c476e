#include "catga/pipeline/in_memory_idempotency_store.hpp"

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "idempotency_shard.hpp"

namespace catga {

using namespace idempotency_detail;

namespace {

using SteadyClock = std::chrono::steady_clock;

Error lost_claim(std::string_view key) {
  return make_error(errc::conflict,
                    "idempotency claim on '" + std::string(key) + "' was lost (released, or its lease expired)");
}

}  // namespace

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

