#pragma once
// IdempotencyBehavior: handles each message (per handler) at most once and
// answers duplicates with the stored outcome.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "catga/behavior.hpp"
#include "catga/pipeline/clock.hpp"
#include "catga/pipeline/idempotency_store.hpp"

namespace catga {

// Options of IdempotencyBehavior.
struct IdempotencyOptions {
  // Where claims and outcomes live (required).
  std::shared_ptr<IdempotencyStore> store{};
  // How long an outcome is remembered.
  std::chrono::nanoseconds ttl = std::chrono::hours(24);
  // How long a claim may stay in progress before another caller may take it
  // over (a crashed owner). Keep it above the slowest handler.
  std::chrono::nanoseconds lease = std::chrono::minutes(5);
  // How long a duplicate waits for the owner when the context has no
  // earlier deadline.
  std::chrono::nanoseconds wait_timeout = std::chrono::seconds(30);
  // The key of a message. Unset: the context's message id. Returning an empty
  // string skips idempotency for that call. The type and handler prefix
  // ("<Type>:" or "<Type>:<handler_key>:") is added either way.
  std::function<std::string(const Invocation&)> key{};
  // Also store non-retryable failures (validation, business rule), so
  // duplicates get the same error without running the handler. Retryable
  // failures are never stored.
  bool remember_failures = false;
  // Queries have no side effects; they skip idempotency unless this is set.
  bool include_queries = false;
  // Reads time for waiting deadlines; null means Clock::system().
  std::shared_ptr<Clock> clock{};

  // A key function reading the header `name` (e.g. "Idempotency-Key"),
  // falling back to the message id when the header is absent.
  static std::function<std::string(const Invocation&)> header_key(std::string name);
};

// Before the handler runs, claims the message's key in the store:
//  - first time: runs the rest of the pipeline; on success stores the
//    outcome (the result encoded with MessageInfo::encode_result; nothing for
//    void) for `ttl`; on failure releases the key, so a retry or redelivery
//    runs the handler again.
//  - already completed: the handler is NOT called; the stored result is
//    decoded into the caller's result slot (or the stored error returned).
//  - in progress elsewhere (a concurrent duplicate): waits until the owner
//    finishes, then replays its outcome; if the owner failed, one waiter
//    claims the key and runs the handler. If the wait reaches the context
//    deadline or `wait_timeout`, the call fails with `deferred` (retryable;
//    Error::retry_after is when the owner's lease runs out): consumer groups
//    redeliver it then and never dead-letter it for that, and a crashed
//    owner's claim is taken over.
// The key names the message and what handles it: "<Type>:<id>" for commands
// (and queries), "<Type>:<handler_key>:<id>" for event handlers and consumer
// groups, so each handler of one event runs once, and an id reused by
// another message type is not answered with the other type's outcome.
// Messages without an id, queries (by default) and results that have no
// JSON codec pass through untouched. Store failures fail the call with the
// store's error (retryable when the store says so): running without the
// guard could apply an effect twice.
//
//   auto store = std::make_shared<catga::InMemoryIdempotencyStore>();
//   mediator.use(std::make_shared<catga::IdempotencyBehavior>(catga::IdempotencyOptions{.store = store}));
//   auto ctx = catga::Context::root();
//   auto id = ctx.message_id;
//   mediator.send(PlaceOrder{...}, ctx);   // runs the handler
//   mediator.send(PlaceOrder{...}, ctx);   // same id: stored result, handler not called
class IdempotencyBehavior final : public Behavior {
 public:
  explicit IdempotencyBehavior(IdempotencyOptions options);
  // Default options around `store`.
  explicit IdempotencyBehavior(std::shared_ptr<IdempotencyStore> store);
  Status handle(Invocation& inv, Next next) override;

 private:
  Status run_owned(Invocation& inv, Next next, std::string_view key, std::uint64_t token);
  Status replay(Invocation& inv, const IdempotencyOutcome& outcome);

  IdempotencyOptions options_;
  // The store, when it is the in-memory one and keys are message ids: then
  // binary ids take its fast path (no key text, one lookup, no JSON copy).
  IdempotencyIdPath* id_path_ = nullptr;  // the store's, when it has one and keys are message ids
};

}  // namespace catga
