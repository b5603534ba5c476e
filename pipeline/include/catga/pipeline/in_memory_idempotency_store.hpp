#pragma once
// InMemoryIdempotencyStore: an IdempotencyStore for one process.

#include <cstddef>
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

// Keys in hash maps behind sharded mutexes; each operation takes one lock.
// Completed entries expire after their TTL (checked lazily, plus
// purge_expired()); wait() sleeps on a condition variable until the owner
// completes or releases. Thread-safe.
//
//   auto store = std::make_shared<catga::InMemoryIdempotencyStore>(
//       catga::InMemoryIdempotencyStoreOptions{.max_entries = 50'000});
//   mediator.use(std::make_shared<catga::IdempotencyBehavior>(catga::IdempotencyOptions{.store = store}));
class InMemoryIdempotencyStore final : public IdempotencyStore {
 public:
  explicit InMemoryIdempotencyStore(InMemoryIdempotencyStoreOptions options = {});
  ~InMemoryIdempotencyStore() override;
  InMemoryIdempotencyStore(const InMemoryIdempotencyStore&) = delete;
  InMemoryIdempotencyStore& operator=(const InMemoryIdempotencyStore&) = delete;

  Result<IdempotencyClaim> claim(std::string_view key, duration lease) override;
  Result<IdempotencyClaim> wait(std::string_view key, duration lease, time_point deadline) override;
  Status complete(std::string_view key, std::uint64_t token, IdempotencyOutcome outcome, duration ttl) override;
  Status release(std::string_view key, std::uint64_t token) override;

  // Entries held (claims and completed outcomes, expired ones not yet purged).
  std::size_t size() const;
  // Drops every expired entry now (otherwise they go lazily).
  void purge_expired();
  void clear();

 private:
  struct Shard;
  Shard& shard_for(std::string_view key, std::size_t& hash) const noexcept;

  InMemoryIdempotencyStoreOptions options_;
  std::size_t shard_bound_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace catga
