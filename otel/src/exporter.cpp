#include "catga/otel/exporter.hpp"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "catga/version.hpp"

namespace catga::otel {

namespace {

struct Url {
  std::string origin;  // scheme://host:port
  std::string path;
};

// "http://host[:port][/path]"; https needs TLS, which this exporter does not
// link (put a collector on localhost or in the pod, as usual).
Result<Url> parse_http_url(const std::string& url) {
  constexpr std::string_view scheme = "http://";
  if (url.rfind(scheme, 0) != 0) {
    return make_error(errc::validation, "OTLP endpoint '" + url + "' must be an http:// URL (https is not supported)");
  }
  const auto slash = url.find('/', scheme.size());
  Url out;
  out.origin = url.substr(0, slash);
  out.path = slash == std::string::npos ? "/" : url.substr(slash);
  if (out.origin.size() == scheme.size()) return make_error(errc::validation, "OTLP endpoint '" + url + "' has no host");
  return out;
}

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

std::string hex64(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return std::string(buf, 16);
}

std::string_view operation_type(std::string_view operation, std::uint8_t kind) {
  // OTel messaging: "send" for producers and clients, "process" for
  // consumers and servers; in-process dispatch is not messaging.
  if (kind == 4 || kind == 3) return "send";
  if (kind == 5 || kind == 2) return "process";
  (void)operation;
  return {};
}

void put_attributes(std::string& out, const SpanRecord& r) {
  out += "\"attributes\":[";
  bool first = true;
  auto sep = [&] {
    if (!first) out += ',';
    first = false;
  };
  for (const auto& [k, v] : r.strings) {
    sep();
    out += "{\"key\":" + json_escape(k) + ",\"value\":{\"stringValue\":" + json_escape(v) + "}}";
  }
  for (const auto& [k, v] : r.ints) {
    sep();
    out += "{\"key\":" + json_escape(k) + ",\"value\":{\"intValue\":\"" + std::to_string(v) + "\"}}";
  }
  for (const auto& [k, v] : r.bools) {
    sep();
    out += "{\"key\":" + json_escape(k) + ",\"value\":{\"boolValue\":" + (v ? "true" : "false") + "}}";
  }
  out += ']';
}

std::optional<std::size_t> positive_size(const char* text) {
  if (text == nullptr || *text == '\0') return std::nullopt;
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (*end != '\0' || v <= 0) return std::nullopt;
  return static_cast<std::size_t>(v);
}

}  // namespace

Result<std::optional<ExporterOptions>> ExporterOptions::from_env(
    const std::function<const char*(const char*)>& getenv_fn) {
  auto get = [&](const char* name) -> std::string {
    const char* v = getenv_fn ? getenv_fn(name) : std::getenv(name);
    return v != nullptr ? std::string(v) : std::string();
  };
  if (get("OTEL_SDK_DISABLED") == "true") return std::optional<ExporterOptions>{};
  ExporterOptions o;
  const std::string traces = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  std::string base = get("OTEL_EXPORTER_OTLP_ENDPOINT");
  if (!traces.empty()) {
    o.endpoint = traces;
  } else if (!base.empty()) {
    while (!base.empty() && base.back() == '/') base.pop_back();
    o.endpoint = base + "/v1/traces";
  } else {
    return std::optional<ExporterOptions>{};
  }
  if (auto url = parse_http_url(o.endpoint); !url) return std::move(url).error();

  if (auto name = get("OTEL_SERVICE_NAME"); !name.empty()) o.service_name = name;
  // key=value,key=value (values may be percent-encoded; taken as they are).
  const std::string attrs = get("OTEL_RESOURCE_ATTRIBUTES");
  for (std::size_t pos = 0; pos < attrs.size();) {
    auto comma = attrs.find(',', pos);
    if (comma == std::string::npos) comma = attrs.size();
    const std::string pair = attrs.substr(pos, comma - pos);
    const auto eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) {
      return make_error(errc::validation, "OTEL_RESOURCE_ATTRIBUTES: '" + pair + "' is not key=value");
    }
    if (pair.substr(0, eq) == "service.name" && get("OTEL_SERVICE_NAME").empty()) {
      o.service_name = pair.substr(eq + 1);
    } else {
      o.resource_attributes.emplace_back(pair.substr(0, eq), pair.substr(eq + 1));
    }
    pos = comma + 1;
  }

  const std::string sampler = get("OTEL_TRACES_SAMPLER");
  const std::string arg = get("OTEL_TRACES_SAMPLER_ARG");
  if (sampler.empty() || sampler == "always_on" || sampler == "parentbased_always_on") {
    o.sampler = Sampler::always_on;
  } else if (sampler == "always_off" || sampler == "parentbased_always_off") {
    o.sampler = Sampler::always_off;
  } else if (sampler == "traceidratio" || sampler == "parentbased_traceidratio") {
    o.sampler = Sampler::trace_id_ratio;
    if (!arg.empty()) {
      char* end = nullptr;
      const double r = std::strtod(arg.c_str(), &end);
      if (*end != '\0' || !(r >= 0.0 && r <= 1.0)) {
        return make_error(errc::validation, "OTEL_TRACES_SAMPLER_ARG '" + arg + "' is not a ratio in [0, 1]");
      }
      o.ratio = r;
    }
  } else {
    return make_error(errc::validation, "OTEL_TRACES_SAMPLER '" + sampler +
                                            "' is not one of always_on, always_off, traceidratio, "
                                            "parentbased_always_on, parentbased_always_off, parentbased_traceidratio");
  }
  if (auto v = positive_size(get("OTEL_BSP_MAX_QUEUE_SIZE").c_str())) o.max_queue = *v;
  if (auto v = positive_size(get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE").c_str())) o.max_batch = *v;
  if (auto v = positive_size(get("OTEL_BSP_SCHEDULE_DELAY").c_str())) o.schedule_delay = std::chrono::milliseconds(*v);
  if (auto v = positive_size(get("OTEL_EXPORTER_OTLP_TIMEOUT").c_str())) o.timeout = std::chrono::milliseconds(*v);
  if (o.max_batch > o.max_queue) o.max_batch = o.max_queue;
  return std::optional<ExporterOptions>{std::move(o)};
}

bool ratio_sampled(const TraceContext& trace, double ratio) noexcept {
  if (ratio >= 1.0) return true;
  if (ratio <= 0.0) return false;
  constexpr std::uint64_t kLow56 = (std::uint64_t{1} << 56) - 1;
  const auto threshold = static_cast<std::uint64_t>(std::ldexp(ratio, 56));
  return (trace.trace_lo & kLow56) < threshold;
}

SpanRecord to_record(const Span& s) {
  SpanRecord r;
  r.name.reserve(s.operation.size() + 1 + s.destination.size());
  r.name.append(s.operation).append(" ").append(s.destination);
  r.kind = static_cast<std::uint8_t>(s.kind);
  r.trace_hi = s.trace.trace_hi;
  r.trace_lo = s.trace.trace_lo;
  r.span_id = s.trace.span_id;
  r.parent_span_id = s.trace.parent_span_id;
  r.flags = s.trace.flags;
  r.tracestate = std::string(s.tracestate);
  r.start_unix_ns = s.start_unix_ns;
  r.end_unix_ns = s.end_unix_ns;
  if (s.error != nullptr) {
    r.error = true;
    r.status_message = s.error->code + ": " + s.error->message;
    r.strings.emplace_back("error.type", s.error->code);
  }
  const std::uint8_t kind = r.kind;
  const bool messaging = kind != 1;
  if (messaging) {
    r.strings.emplace_back("messaging.system", "nats");
    r.strings.emplace_back("messaging.operation.name", std::string(s.operation));
    r.strings.emplace_back("messaging.operation.type", std::string(operation_type(s.operation, kind)));
    r.strings.emplace_back("messaging.destination.name", std::string(s.destination));
  }
  r.strings.emplace_back("catga.message.type", std::string(s.message_type));
  if (s.message_id) r.strings.emplace_back("messaging.message.id", s.message_id.text().str());
  if (s.correlation_id) r.strings.emplace_back("messaging.message.conversation_id", s.correlation_id.text().str());
  if (!s.consumer_group.empty()) r.strings.emplace_back("messaging.consumer.group.name", std::string(s.consumer_group));
  if (kind == 5) {
    r.ints.emplace_back("catga.delivery.attempt", s.attempt);  // 1: first delivery, 2: first redelivery
  }
  if (s.sequence != 0) r.ints.emplace_back("catga.stream.sequence", static_cast<std::int64_t>(s.sequence));
  if (!s.saga_type.empty()) {
    r.strings.emplace_back("catga.saga.type", std::string(s.saga_type));
    r.strings.emplace_back("catga.saga.id", std::string(s.saga_id));
    r.strings.emplace_back("catga.saga.step", std::string(s.saga_step));
    r.bools.emplace_back("catga.saga.compensation", s.compensation);
  }
  return r;
}

std::string encode_otlp_json(const std::vector<SpanRecord>& spans, const ExporterOptions& options) {
  std::string out;
  out.reserve(512 + spans.size() * 900);
  out += "{\"resourceSpans\":[{\"resource\":{\"attributes\":[";
  out += "{\"key\":\"service.name\",\"value\":{\"stringValue\":" + json_escape(options.service_name) + "}}";
  out += ",{\"key\":\"telemetry.sdk.name\",\"value\":{\"stringValue\":\"catga\"}}";
  out += ",{\"key\":\"telemetry.sdk.language\",\"value\":{\"stringValue\":\"cpp\"}}";
  out += ",{\"key\":\"telemetry.sdk.version\",\"value\":{\"stringValue\":\"" CATGA_VERSION_STRING "\"}}";
  for (const auto& [k, v] : options.resource_attributes) {
    out += ",{\"key\":" + json_escape(k) + ",\"value\":{\"stringValue\":" + json_escape(v) + "}}";
  }
  out += "]},\"scopeSpans\":[{\"scope\":{\"name\":\"catga\",\"version\":\"" CATGA_VERSION_STRING "\"},\"spans\":[";
  bool first = true;
  for (const auto& r : spans) {
    if (!first) out += ',';
    first = false;
    out += "{\"traceId\":\"" + hex64(r.trace_hi) + hex64(r.trace_lo) + "\"";
    out += ",\"spanId\":\"" + hex64(r.span_id) + "\"";
    if (r.parent_span_id != 0) out += ",\"parentSpanId\":\"" + hex64(r.parent_span_id) + "\"";
    if (!r.tracestate.empty()) out += ",\"traceState\":" + json_escape(r.tracestate);
    out += ",\"flags\":" + std::to_string(static_cast<unsigned>(r.flags));
    out += ",\"name\":" + json_escape(r.name);
    out += ",\"kind\":" + std::to_string(static_cast<unsigned>(r.kind));
    out += ",\"startTimeUnixNano\":\"" + std::to_string(r.start_unix_ns) + "\"";
    out += ",\"endTimeUnixNano\":\"" + std::to_string(r.end_unix_ns) + "\",";
    put_attributes(out, r);
    if (r.error) {
      out += ",\"status\":{\"code\":2,\"message\":" + json_escape(r.status_message) + "}";
    } else {
      out += ",\"status\":{\"code\":1}";
    }
    out += '}';
  }
  out += "]}]}]}";
  return out;
}

std::shared_ptr<Exporter> Exporter::start(ExporterOptions options) {
  std::shared_ptr<Exporter> e(new Exporter(std::move(options)));
  e->thread_ = std::thread([raw = e.get()] { raw->run(); });
  return e;
}

Exporter::Exporter(ExporterOptions options) : options_(std::move(options)) {}

Exporter::~Exporter() {
  flush(options_.timeout);
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Exporter::sample_root(const TraceContext& trace) noexcept {
  switch (options_.sampler) {
    case Sampler::always_on: return true;
    case Sampler::always_off: return false;
    case Sampler::trace_id_ratio: return ratio_sampled(trace, options_.ratio);
  }
  return true;
}

void Exporter::on_end(const Span& span) noexcept {
  try {
    SpanRecord record = to_record(span);
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      if (stopping_ || queue_.size() >= options_.max_queue) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      queue_.push_back(std::move(record));
      ++enqueued_;
      wake = queue_.size() >= options_.max_batch;
    }
    if (wake) wake_.notify_one();
  } catch (...) {
    dropped_.fetch_add(1, std::memory_order_relaxed);  // out of memory: the span is lost, counted
  }
}

bool Exporter::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  const std::uint64_t target = enqueued_;
  flush_requested_ = true;
  wake_.notify_one();
  return flushed_.wait_for(lock, timeout, [&] { return done_ >= target; });
}

ExporterStats Exporter::stats() const noexcept {
  return ExporterStats{exported_.load(std::memory_order_relaxed), dropped_.load(std::memory_order_relaxed),
                       failed_requests_.load(std::memory_order_relaxed)};
}

bool Exporter::post(const std::string& body) {
  auto url = parse_http_url(options_.endpoint);
  if (!url) return false;
  try {
    httplib::Client client(url->origin);
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(options_.timeout);
    const auto usecs = std::chrono::duration_cast<std::chrono::microseconds>(options_.timeout - secs);
    client.set_connection_timeout(secs.count(), usecs.count());
    client.set_read_timeout(secs.count(), usecs.count());
    client.set_write_timeout(secs.count(), usecs.count());
    auto res = client.Post(url->path, body, "application/json");
    if (!res) {
      spdlog::warn("catga::otel: export to {} failed: {}", options_.endpoint, httplib::to_string(res.error()));
      return false;
    }
    if (res->status / 100 != 2) {
      spdlog::warn("catga::otel: export to {} answered {}: {}", options_.endpoint, res->status, res->body.substr(0, 200));
      return false;
    }
    return true;
  } catch (const std::exception& ex) {
    spdlog::warn("catga::otel: export to {} failed: {}", options_.endpoint, ex.what());
    return false;
  }
}

void Exporter::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait_for(lock, options_.schedule_delay, [&] {
      return stopping_ || flush_requested_ || queue_.size() >= options_.max_batch;
    });
    if (queue_.empty()) {
      flush_requested_ = false;
      flushed_.notify_all();
      if (stopping_) return;
      continue;
    }
    const std::size_t n = std::min(queue_.size(), options_.max_batch);
    std::vector<SpanRecord> batch;
    batch.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    lock.unlock();
    bool ok = false;
    try {
      ok = post(encode_otlp_json(batch, options_));
    } catch (...) {
      ok = false;
    }
    if (ok) {
      exported_.fetch_add(batch.size(), std::memory_order_relaxed);
    } else {
      failed_requests_.fetch_add(1, std::memory_order_relaxed);
      dropped_.fetch_add(batch.size(), std::memory_order_relaxed);
    }
    lock.lock();
    done_ += batch.size();
    if (queue_.empty()) flush_requested_ = false;
    flushed_.notify_all();
  }
}

}  // namespace catga::otel
