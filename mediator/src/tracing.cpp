#include "catga/tracing.hpp"

#include <chrono>

#include "catga/transport.hpp"
#include "catga/wire.hpp"

namespace catga::detail {

std::int64_t unix_now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void describe_delivery(Span& span, const Delivery& delivery, std::string_view group) noexcept {
  span.destination = delivery.subject();
  span.consumer_group = group;
  span.attempt = delivery.attempt();
  span.sequence = delivery.sequence();
}

void SpanScope::begin(SpanSink* sink, Context& ctx, SpanKind kind, std::string_view operation,
                      std::string_view message_type) noexcept {
  if (!ctx.trace.valid()) {
    // A message that came without a traceparent (another client): a new
    // trace starts here, and the handler's messages join it.
    ctx.trace.trace_hi = random_u64();
    ctx.trace.trace_lo = random_nonzero_u64();
    ctx.trace.span_id = new_span_id();
    ctx.trace.parent_span_id = 0;
  }
  // A root decides for its trace; everything below follows its flag.
  if (ctx.trace.parent_span_id == 0) {
    if (sink->sample_root(ctx.trace)) {
      ctx.trace.flags |= 1;
    } else {
      ctx.trace.flags &= static_cast<std::uint8_t>(~1u);
    }
  }
  if ((ctx.trace.flags & 1) == 0) return;
  sink_ = sink;
  ctx_ = &ctx;
  Span& s = span_.emplace();
  s.operation = operation;
  s.kind = kind;
  s.message_type = message_type;
  s.destination = message_type;
  s.trace = ctx.trace;
  s.message_id = ctx.message_id;
  s.correlation_id = ctx.correlation_id;
  s.attempt = ctx.attempt;
  s.start_unix_ns = unix_now_ns();
}

void SpanScope::finish(const Error* error) noexcept {
  SpanSink* sink = sink_;
  sink_ = nullptr;
  span_->end_unix_ns = unix_now_ns();
  span_->error = error;
  if (auto state = ctx_->headers.get(wire::kTracestate)) span_->tracestate = *state;
  sink->on_end(*span_);
}

}  // namespace catga::detail
