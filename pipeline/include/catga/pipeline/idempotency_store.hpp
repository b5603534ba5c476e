#pragma once
// IdempotencyStore: remembers which messages were handled and what came out,
// so duplicates are answered from memory instead of being handled twice.

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "catga/result.hpp"

namespace catga {

// What a handled message produced: its result as JSON, or the Error it
// failed with. Failures are only stored when the behavior is told to
// (IdempotencyOptions::remember_failures).
//
//   catga::IdempotencyOutcome done{.value = 42};
//   catga::IdempotencyOutcome nothing{};  // a void result
//   catga::IdempotencyOutcome failed{.error = catga::Error{"out_of_stock", "none left", false}};
struct IdempotencyOutcome {
  nlohmann::json value{};        // the result (MessageInfo::encode_result); null for void
  std::optional<Error> error{};  // set for a stored failure

  bool ok() const noexcept { return !error.has_value(); }
  friend bool operator==(const IdempotencyOutcome&, const IdempotencyOutcome&) = default;
};

// Outcomes as bytes, for stores that keep bytes (JetStream KV, Redis, SQL).
// The format is the reply body of remote commands (docs/wire-format.md):
//   {"ok":true,"value":42}   {"ok":true}   {"ok":false,"error":{"code":...,"message":...,"retryable":...}}
std::string encode_outcome(const IdempotencyOutcome& outcome);
Result<IdempotencyOutcome> decode_outcome(std::string_view bytes);

// The answer to a claim.
//  - claimed: the caller owns the key and must run the handler, then call
//    complete() or release() with `token`.
//  - in_progress: someone else owns it (claimed, not finished, lease valid).
//  - completed: handled before; `outcome` is what came out.
struct IdempotencyClaim {
  enum class State { claimed, in_progress, completed };
  State state = State::claimed;
  // Identifies this ownership (a KV store uses the entry revision), so a
  // stale owner whose lease was taken over cannot overwrite the new one.
  std::uint64_t token = 0;
  std::optional<IdempotencyOutcome> outcome{};  // set when completed
  // in_progress: how long until the owner's lease runs out and the key may
  // be taken over (0: the store cannot tell).
  std::chrono::nanoseconds lease_left{0};
};

// The fast path of a store for generated message ids (MessageId::generate):
// the behavior claims by the id's 128 bits, without making its text, and the
// store writes the result straight into its entry (no IdempotencyOutcome).
// Optional: a store offers it through IdempotencyStore::id_path(). The entry
// claimed by claim_id(hi, lo) must be the one that claim()/wait() find under
// the key of 32 lowercase hex digits, hi's then lo's (a duplicate that must
// wait takes that path). `hi` already carries the message type (the behavior
// XORs a hash of the type's name into it), so one id of two types is two
// entries.
//
//   if (auto* ids = store->id_path()) {
//     auto c = ids->claim_id(id.hi() ^ tag, id.lo(), lease);
//     if (c.state == catga::IdempotencyClaim::State::claimed) ... ids->complete_id(c, nullptr, encode, &result, ttl);
//   }
class IdempotencyIdPath {
 public:
  // A claim as the store knows it: the state, the owner's token and where
  // the entry is (store-defined).
  struct Claim {
    IdempotencyClaim::State state;
    std::uint64_t token;
    std::uint32_t where_a;
    std::uint32_t where_b;
  };
  // Writes a handler's result (a `const std::optional<R>*`) as JSON.
  using EncodeResult = void (*)(nlohmann::json& out, const void* optional_result);

  // As IdempotencyStore::claim, by id; never fails (an in-process store).
  virtual Claim claim_id(std::uint64_t hi, std::uint64_t lo, std::chrono::steady_clock::duration lease) = 0;
  // As complete(): `error` set stores that failure, else `encode(result)`
  // (when both are non-null) becomes the stored value.
  virtual Status complete_id(const Claim& claim, const Error* error, EncodeResult encode, const void* result,
                             std::chrono::steady_clock::duration ttl) = 0;
  // As release().
  virtual void release_id(const Claim& claim) noexcept = 0;

 protected:
  ~IdempotencyIdPath() = default;
};

// Storage for IdempotencyBehavior. Calls are synchronous and may come from
// any thread; keys are short printable strings (at most a few hundred bytes).
//
// The states map onto a key-value store with TTL and compare-and-set:
//   claim    = create the key with an "in progress" marker if absent (or if
//              the entry found is expired); the returned revision is the token.
//   complete = update the key to the encoded outcome if it still holds our
//              revision; expires after `ttl`.
//   release  = delete the key if it still holds our revision, so a later
//              attempt (a retry, a redelivery, a waiting duplicate) may run.
//   wait     = poll until the key is no longer in progress (a memory store
//              uses a condition variable), then claim like claim().
// `lease` bounds how long a claim may stay in progress: past it the owner is
// presumed dead (a crashed process) and another caller may take the key over.
//
//   auto store = std::make_shared<catga::InMemoryIdempotencyStore>();
//   auto c = store->claim("order-17", std::chrono::minutes(5)).value();
//   if (c.state == catga::IdempotencyClaim::State::claimed) {
//     ... handle ...
//     store->complete("order-17", c.token, {.value = 42}, std::chrono::hours(24));
//   }
class IdempotencyStore {
 public:
  using duration = std::chrono::steady_clock::duration;
  using time_point = std::chrono::steady_clock::time_point;

  virtual ~IdempotencyStore() = default;

  // Never blocks on other owners. Errors mean the store is unreachable.
  virtual Result<IdempotencyClaim> claim(std::string_view key, duration lease) = 0;

  // Waits (until `deadline`, on the store's clock) while the key is in
  // progress, then claims it as claim() does. Returns in_progress when the
  // deadline passed first.
  virtual Result<IdempotencyClaim> wait(std::string_view key, duration lease, time_point deadline) = 0;

  // Stores the outcome for `ttl` and wakes waiters. Fails with `conflict` if
  // the claim was lost (released, or taken over after its lease).
  virtual Status complete(std::string_view key, std::uint64_t token, IdempotencyOutcome outcome, duration ttl) = 0;

  // Forgets the claim (the handler failed) and wakes waiters; a no-op if it
  // was already lost.
  virtual Status release(std::string_view key, std::uint64_t token) = 0;

  // The store's fast path for generated message ids, if it has one
  // (InMemoryIdempotencyStore does); nullptr: the calls above only.
  virtual IdempotencyIdPath* id_path() noexcept { return nullptr; }
};

}  // namespace catga
