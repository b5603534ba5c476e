#pragma once
// Spans: what the mediator records about each dispatch when a SpanSink is
// set, for an exporter (catga::otel sends them as OpenTelemetry OTLP).
//
// One span per send, query, publish, consumed delivery (one per attempt),
// remote request (client) and serve (server), and saga step, following the
// OpenTelemetry messaging semantic conventions (docs/operations.md,
// "Traces"). A span's ids are its message's Context ids: span_id is the
// message's span, parent_span_id the caller's, so the traceparent a message
// carries names the span that sent it and a consumer's span is its child.
//
//   struct Printer : catga::SpanSink {
//     void on_end(const catga::Span& s) noexcept override { std::printf("%s\n", s.operation.data()); }
//   };
//   mediator.trace_to(std::make_shared<Printer>());
//
// Without a sink nothing is recorded: each dispatch tests one pointer.

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "catga/context.hpp"
#include "catga/result.hpp"

namespace catga {

class Delivery;

// The OpenTelemetry span kinds (OTLP's numbers).
enum class SpanKind : std::uint8_t { internal = 1, server = 2, client = 3, producer = 4, consumer = 5 };

// One finished span. Valid only during SpanSink::on_end: copy what you keep.
struct Span {
  // "send", "query", "publish", "process" (a consumed delivery), "request"
  // (client side of a remote send/query), "serve", "saga_step" (OTel's
  // messaging.operation.name); the span's name is "<operation> <destination>".
  std::string_view operation;
  SpanKind kind = SpanKind::internal;
  std::string_view message_type;  // catga type name
  // The subject of a consumed or served message; the type name otherwise.
  std::string_view destination;
  TraceContext trace;              // trace id, span_id, parent_span_id (0: a root), flags
  std::string_view tracestate;     // W3C tracestate of the trace ("" if none)
  std::int64_t start_unix_ns = 0;  // system clock
  std::int64_t end_unix_ns = 0;
  const Error* error = nullptr;  // null: ok
  MessageId message_id;
  MessageId correlation_id;         // messaging.message.conversation_id
  std::string_view consumer_group;  // consumed deliveries
  int attempt = 0;                  // delivery attempt of a consumed message (1: first)
  std::uint64_t sequence = 0;       // stream sequence of a consumed message (0: none)
  std::string_view saga_type;       // saga steps
  std::string_view saga_id;
  std::string_view saga_step;
  bool compensation = false;  // a saga step's compensation
};

// Receives finished spans. Called on the thread that ran the dispatch, at
// its end: keep on_end quick and non-blocking (queue and export elsewhere).
class SpanSink {
 public:
  virtual ~SpanSink() = default;
  // Whether a new trace (a span without a parent) is sampled. Its
  // descendants, here and in other processes, follow the decision through
  // the traceparent's sampled flag. Default: every trace.
  virtual bool sample_root(const TraceContext& trace) noexcept {
    (void)trace;
    return true;
  }
  // A sampled span ended.
  virtual void on_end(const Span& span) noexcept = 0;
};

namespace detail {

std::int64_t unix_now_ns() noexcept;
// Subject, group, attempt and stream sequence of a consumed/served delivery.
void describe_delivery(Span& span, const Delivery& delivery, std::string_view group) noexcept;

// Records one span around a dispatch, only when a sink is set and the trace
// is sampled. The ids are read from the context at the start, the
// tracestate at the end.
//
//   SpanScope span(sink, ctx, SpanKind::internal, "send", info.name);
//   Status s = ...;
//   span.end(s);
class SpanScope {
 public:
  SpanScope(SpanSink* sink, Context& ctx, SpanKind kind, std::string_view operation,
            std::string_view message_type) noexcept {
    if (sink != nullptr) [[unlikely]] begin(sink, ctx, kind, operation, message_type);
  }
  SpanScope(const SpanScope&) = delete;
  SpanScope& operator=(const SpanScope&) = delete;
  // Ends the span ok if end() was not called (an exception passed).
  ~SpanScope() {
    if (sink_ != nullptr) [[unlikely]] finish(nullptr);
  }

  bool recording() const noexcept { return sink_ != nullptr; }
  // Fields a caller may add before end() (destination, group, saga ...);
  // only while recording().
  Span& span() noexcept { return *span_; }

  void end(const Status& status) noexcept {
    if (sink_ != nullptr) [[unlikely]] finish(status.ok() ? nullptr : &status.error());
  }
  void end(const Error* error) noexcept {
    if (sink_ != nullptr) [[unlikely]] finish(error);
  }

 private:
  void begin(SpanSink* sink, Context& ctx, SpanKind kind, std::string_view operation,
             std::string_view message_type) noexcept;
  void finish(const Error* error) noexcept;

  SpanSink* sink_ = nullptr;
  const Context* ctx_ = nullptr;
  std::optional<Span> span_;  // made only when recording: a dispatch without a sink builds none
};

}  // namespace detail
}  // namespace catga
