#pragma once
// catga::otel: sends the mediator's spans (catga/tracing.hpp) to an
// OpenTelemetry collector (or Jaeger, Tempo ...) as OTLP/HTTP with JSON
// bodies, from a thread of its own: batches, a bounded queue, and a counter
// of what it had to drop. opentelemetry-cpp is not packaged for Debian 12,
// so this is a small exporter of our own; tests/otel checks its bodies
// against the official .proto files.
//
//   auto options = catga::otel::ExporterOptions::from_env();   // OTEL_* variables
//   if (options) {
//     auto exporter = catga::otel::Exporter::start(*options);
//     mediator.trace_to(exporter);
//   }
//
// Variables read by from_env() (the OpenTelemetry SDK's names and defaults):
//   OTEL_EXPORTER_OTLP_ENDPOINT         base URL, "/v1/traces" is appended (http only)
//   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT  full URL of the traces endpoint (wins)
//   OTEL_SERVICE_NAME                   service.name (default "unknown_service")
//   OTEL_RESOURCE_ATTRIBUTES            key=value,... added to the resource
//   OTEL_TRACES_SAMPLER                 always_on | always_off | traceidratio |
//                                       parentbased_always_on (default) |
//                                       parentbased_always_off | parentbased_traceidratio
//   OTEL_TRACES_SAMPLER_ARG             the ratio of the traceidratio samplers (default 1.0)
//   OTEL_BSP_MAX_QUEUE_SIZE             spans held before new ones are dropped (default 2048)
//   OTEL_BSP_MAX_EXPORT_BATCH_SIZE      spans per request (default 512)
//   OTEL_BSP_SCHEDULE_DELAY             ms between exports of a partial batch (default 5000)
//   OTEL_EXPORTER_OTLP_TIMEOUT          ms a request may take (default 10000)
//   OTEL_SDK_DISABLED=true              no exporter

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "catga/result.hpp"
#include "catga/tracing.hpp"

namespace catga::otel {

// How new traces are sampled (OTEL_TRACES_SAMPLER). Spans with a parent
// follow the parent's sampled flag whichever is chosen (catga/tracing.hpp):
// the parentbased_* and plain samplers differ only for remote parents from
// other SDKs, which catga treats as parentbased.
enum class Sampler { always_on, always_off, trace_id_ratio };

struct ExporterOptions {
  std::string endpoint = "http://localhost:4318/v1/traces";  // full URL of the traces endpoint
  std::string service_name = "unknown_service";
  std::vector<std::pair<std::string, std::string>> resource_attributes;
  Sampler sampler = Sampler::always_on;
  double ratio = 1.0;  // trace_id_ratio: fraction of new traces sampled
  std::size_t max_queue = 2048;
  std::size_t max_batch = 512;
  std::chrono::milliseconds schedule_delay{5000};
  std::chrono::milliseconds timeout{10000};

  // From the OTEL_* variables (see above): nullopt when no endpoint is set
  // (tracing stays off) or OTEL_SDK_DISABLED=true; an error for values that
  // cannot be used (an unknown sampler, an https or malformed URL ...).
  // `getenv` is for tests.
  static Result<std::optional<ExporterOptions>> from_env(
      const std::function<const char*(const char*)>& getenv = nullptr);
};

// One span as exported (the owned copy of a catga::Span).
struct SpanRecord {
  std::string name;
  std::uint8_t kind = 1;  // OTLP SpanKind
  std::uint64_t trace_hi = 0, trace_lo = 0, span_id = 0, parent_span_id = 0;
  std::uint8_t flags = 1;
  std::string tracestate;
  std::int64_t start_unix_ns = 0, end_unix_ns = 0;
  bool error = false;
  std::string status_message;
  // Attributes: string values, then integer values, then booleans.
  std::vector<std::pair<std::string, std::string>> strings;
  std::vector<std::pair<std::string, std::int64_t>> ints;
  std::vector<std::pair<std::string, bool>> bools;
};

// The record of `span`: name "<operation> <destination>", the OpenTelemetry
// messaging attributes (docs/operations.md, "Traces").
SpanRecord to_record(const Span& span);

// An ExportTraceServiceRequest in OTLP/JSON (trace and span ids as hex, as
// the OTLP spec asks, 64-bit numbers as strings).
std::string encode_otlp_json(const std::vector<SpanRecord>& spans, const ExporterOptions& options);

// Whether the trace_id_ratio sampler keeps `trace`: its low 56 bits below
// ratio x 2^56 (the W3C random part), so every process decides alike.
bool ratio_sampled(const TraceContext& trace, double ratio) noexcept;

// Counters of an exporter (also rendered as metrics by the sample).
struct ExporterStats {
  std::uint64_t exported = 0;  // spans the collector accepted
  std::uint64_t dropped = 0;   // spans dropped: queue full, or their request failed
  std::uint64_t failed_requests = 0;
};

// The exporter: a SpanSink that queues finished spans (on_end copies and
// returns; a full queue drops the span and counts it) and a thread that
// sends them in batches of max_batch, at once when a batch is full, else
// every schedule_delay. A failed request drops its batch (no retry queue:
// the bound holds whatever the collector does). Destruction flushes what is
// queued (up to `timeout`) and stops the thread.
class Exporter final : public SpanSink {
 public:
  static std::shared_ptr<Exporter> start(ExporterOptions options);
  ~Exporter() override;
  Exporter(const Exporter&) = delete;
  Exporter& operator=(const Exporter&) = delete;

  bool sample_root(const TraceContext& trace) noexcept override;
  void on_end(const Span& span) noexcept override;

  // Sends everything queued so far; true when it was sent (or dropped by a
  // failed request) within `timeout`.
  bool flush(std::chrono::milliseconds timeout);
  ExporterStats stats() const noexcept;
  const ExporterOptions& options() const noexcept { return options_; }

 private:
  explicit Exporter(ExporterOptions options);
  void run();
  bool post(const std::string& body);

  const ExporterOptions options_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable flushed_;
  std::deque<SpanRecord> queue_;
  std::uint64_t enqueued_ = 0;  // spans ever queued
  std::uint64_t done_ = 0;      // spans ever sent or dropped after queueing
  bool stopping_ = false;
  bool flush_requested_ = false;
  std::atomic<std::uint64_t> exported_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> failed_requests_{0};
  std::thread thread_;
};

}  // namespace catga::otel
