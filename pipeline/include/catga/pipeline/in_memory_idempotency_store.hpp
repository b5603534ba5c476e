#pragma once
// InMemoryIdempotencyStore: an IdempotencyStore for one process.

#include <cstddef>
#include <cstdint>
#include <memory>

#include "catga/pipeline/clock.hpp"
#include "catga/pipeline/idempotency_store.hpp"

namespace catga {

// Options of InMemoryIdempotencyStore.
struct InMemoryIdempotencyStoreOptions {
  // Upper bound on stored keys. When exceeded, the oldest completed entries
  // are evicted; claims in progress are never evicted (so the bound can be
  // passed while many handlers run at once).
  std::size_t max_entries = 100'000;
  // Independent lock domains; 0 picks one per 1024 entries of the bound,
  // between 1 and 16. The bound is split evenly between them, so "oldest" is
  // per shard; use 1 shard where the exact order matters (tests).
  std::size_t shards = 0;
  // Measures TTLs and leases; null means Clock::system().
  std::shared_ptr<Clock> clock{};
};

// Keys in hash maps behind sharded locks; each operation takes one lock.
// Completed entries expire after their TTL (checked lazily, plus
// purge_expired()); wait() sleeps on a condition variable until the owner
// completes or releases. Thread-safe. Keys of 32 lowercase hex digits (the
// text of a generated message id) are held as 128 bits; IdempotencyBehavior
// claims those without making their text, and stores the result straight
// into the entry (one lookup and no allocation per message). An entry is one
// cache line, and claiming a generated id also prefetches the slots of the
// id that follows it, so one thread's stream of sends rarely waits for memory.
//
//   auto store = std::make_shared<catga::InMemoryIdempotencyStore>(
//       catga::InMemoryIdempotencyStoreOptions{.max_entries = 50'000});
//   mediator.use(std::make_shared<catga::IdempotencyBehavior>(catga::IdempotencyOptions{.store = store}));
class InMemoryIdempotencyStore final : public IdempotencyStore, private IdempotencyIdPath {
 public:
  explicit InMemoryIdempotencyStore(InMemoryIdempotencyStoreOptions options = {});
  ~InMemoryIdempotencyStore() override;
  InMemoryIdempotencyStore(const InMemoryIdempotencyStore&) = delete;
  InMemoryIdempotencyStore& operator=(const InMemoryIdempotencyStore&) = delete;

  Result<IdempotencyClaim> claim(std::string_view key, duration lease) override;
  Result<IdempotencyClaim> wait(std::string_view key, duration lease, time_point deadline) override;
  Status complete(std::string_view key, std::uint64_t token, IdempotencyOutcome outcome, duration ttl) override;
  Status release(std::string_view key, std::uint64_t token) override;
  // Claims generated ids by their 128 bits (see IdempotencyIdPath).
  IdempotencyIdPath* id_path() noexcept override { return this; }

  // Entries held (claims and completed outcomes, expired ones not yet purged).
  std::size_t size() const;
  // Drops every expired entry now (otherwise they go lazily).
  void purge_expired();
  void clear();

 private:
  struct Shard;
  // Slots use a hash's low bits; its high bits pick the shard.
  Shard& shard_for(std::uint64_t hash) const noexcept;
  // options_.clock->coarse_now(), without the virtual call for the system
  // clock (two reads per message on the fast path).
  Clock::time_point coarse_now() const noexcept {
    return system_clock_ != nullptr ? system_clock_->coarse_now() : options_.clock->coarse_now();
  }

  // IdempotencyIdPath: a Claim's where_a is the shard, where_b the entry.
  Claim claim_id(std::uint64_t hi, std::uint64_t lo, duration lease) override;
  Status complete_id(const Claim& claim, const Error* error, EncodeResult encode, const void* result,
                     duration ttl) override;
  void release_id(const Claim& claim) noexcept override;

  InMemoryIdempotencyStoreOptions options_;
  const SystemClock* system_clock_ = nullptr;  // options_.clock, when it is one
  std::size_t shard_bound_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace catga
