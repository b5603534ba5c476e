#pragma once
// Context: what travels with every message besides its body.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catga/message_id.hpp"

namespace catga {

// W3C trace context (https://www.w3.org/TR/trace-context/), held as numbers.
// `span_id` is this message's span; `parent_span_id` is the caller's.
//
//   auto tc = catga::TraceContext::parse("00-4bf9...-00f0...-01");
//   std::string header = tc->traceparent();
struct TraceContext {
  std::uint64_t trace_hi = 0;
  std::uint64_t trace_lo = 0;
  std::uint64_t span_id = 0;
  std::uint64_t parent_span_id = 0;
  std::uint8_t flags = 1;  // sampled

  bool valid() const noexcept { return (trace_hi | trace_lo) != 0 && span_id != 0; }
  // "00-<trace-id>-<span-id>-<flags>", 55 characters.
  IdText traceparent() const noexcept;
  // Parses a traceparent header; the parsed span becomes parent_span_id.
  static std::optional<TraceContext> parse(std::string_view traceparent) noexcept;
};

// Message headers beyond the ones catga manages (those are Context fields).
// A small vector: empty costs nothing, lookups are linear and case-sensitive.
//
//   ctx.headers.set("Tenant", "acme");
//   if (auto t = ctx.headers.get("Tenant")) ...
class Headers {
 public:
  using Entry = std::pair<std::string, std::string>;

  void set(std::string_view key, std::string_view value);
  std::optional<std::string_view> get(std::string_view key) const noexcept;
  bool erase(std::string_view key) noexcept;
  bool empty() const noexcept { return entries_.empty(); }
  std::size_t size() const noexcept { return entries_.size(); }
  auto begin() const noexcept { return entries_.begin(); }
  auto end() const noexcept { return entries_.end(); }
  void clear() noexcept { entries_.clear(); }

 private:
  std::vector<Entry> entries_;
};

struct Context;

namespace detail {
// The context of the handler running on this thread (Context::current).
// Trivial and constant-initialised: inline reads need no TLS guard.
inline thread_local const Context* t_current_context = nullptr;

// A new span id: random and never zero (W3C trace context).
inline std::uint64_t new_span_id() noexcept { return random_nonzero_u64(); }
}  // namespace detail

// The context of one dispatch: ids, trace, headers, deadline, attempt.
// The mediator creates one per send/query/publish; a message sent from inside
// a handler becomes its child (same correlation id and trace, causation = the
// current message, deadline inherited).
//
//   catga::Context ctx = catga::Context::root();
//   ctx.deadline = catga::Context::Clock::now() + std::chrono::seconds(2);
//   ctx.headers.set("Tenant", "acme");
//   auto r = mediator.send(PlaceOrder{...}, std::move(ctx));
struct Context {
  using Clock = std::chrono::steady_clock;
  static constexpr Clock::time_point kNoDeadline = Clock::time_point::max();

  MessageId message_id;
  MessageId correlation_id;
  MessageId causation_id;  // nil for a root message
  TraceContext trace;
  Headers headers;
  Clock::time_point deadline = kNoDeadline;
  int attempt = 1;                // delivery/dispatch attempt, 1-based
  std::string_view message_type;  // wire name; set by the mediator

  // A new conversation: fresh message id, correlation = message id, new trace.
  // Inline (built on every dispatch): an id from the thread's counter, a
  // random trace id and span id (W3C asks for random trace ids: ratio
  // samplers read their low bits), no clock read, no allocation.
  static Context root() noexcept {
    Context ctx;
    ctx.message_id = MessageId::generate();
    ctx.correlation_id = ctx.message_id;
    ctx.trace.trace_hi = detail::random_u64();
    ctx.trace.trace_lo = detail::random_nonzero_u64();
    ctx.trace.span_id = detail::new_span_id();
    return ctx;
  }
  // The next message in this conversation: new id, same correlation,
  // causation = this message, child span of the same trace (with its
  // `tracestate` header), same deadline. Other headers are not inherited:
  // the caller decides what a child carries (copy a tenant header on
  // purpose).
  Context child() const noexcept;
  // Child of the context of the handler running on this thread, or a root.
  static Context next() noexcept {
    const Context* parent = detail::t_current_context;
    return parent != nullptr ? parent->child() : root();
  }

  // The context of the handler running on this thread (nullptr outside one).
  static const Context* current() noexcept { return detail::t_current_context; }

  bool has_deadline() const noexcept { return deadline != kNoDeadline; }
  bool expired(Clock::time_point now = Clock::now()) const noexcept { return now >= deadline; }
  // Time left before the deadline (zero if passed, max if none).
  Clock::duration remaining(Clock::time_point now = Clock::now()) const noexcept;
};

// Makes `ctx` the current context of this thread until destroyed; used by the
// mediator around handler calls, and by transports around consumed messages.
class CurrentContextScope {
 public:
  explicit CurrentContextScope(const Context& ctx) noexcept : previous_(detail::t_current_context) {
    detail::t_current_context = &ctx;
  }
  ~CurrentContextScope() { detail::t_current_context = previous_; }
  CurrentContextScope(const CurrentContextScope&) = delete;
  CurrentContextScope& operator=(const CurrentContextScope&) = delete;

 private:
  const Context* previous_;
};

}  // namespace catga
