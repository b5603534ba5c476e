#include "catga/pipeline/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace catga {
namespace {

constexpr std::size_t kBuckets = Metrics::kBucketNanos.size();
constexpr int kCounter = 0;
constexpr int kGauge = 1;
constexpr int kHistogram = 2;

constexpr std::string_view kHandled = "catga_messages_handled_total";
constexpr std::string_view kFailed = "catga_messages_failed_total";
constexpr std::string_view kDuration = "catga_handler_duration_seconds";

bool valid_name(std::string_view s, bool colon_ok) noexcept {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_ok && c == ':') ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

void append_escaped(std::string& out, std::string_view v, bool quote) {
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

void append_double(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
  }
}

void append_header(std::string& out, std::string_view name, std::string_view help, std::string_view type) {
  out.append("# HELP ").append(name).append(" ");
  append_escaped(out, help, false);
  out.append("\n# TYPE ").append(name).append(" ").append(type).append("\n");
}

// `{type="X"` without the closing brace, so more labels can follow.
void open_type_labels(std::string& out, std::string_view name, std::string_view type) {
  out.append(name).append("{type=\"");
  append_escaped(out, type, true);
  out += '"';
}

}  // namespace

struct Metrics::TypeStats {
  const MessageInfo* info = nullptr;
  std::string name;
  std::atomic<std::uint64_t> handled{0};
  std::array<std::atomic<std::uint64_t>, kBuckets + 1> buckets{};
  std::atomic<std::uint64_t> sum_ns{0};
  mutable std::mutex failures_mutex;
  std::vector<std::pair<std::string, std::uint64_t>> failures;  // by code
};

struct Metrics::Series {
  MetricLabels labels;
  std::string label_text;  // `{a="b",c="d"}` or empty
  MetricCounter counter;
  MetricGauge gauge;
  std::unique_ptr<MetricHistogram> histogram;  // histograms only
  std::function<double()> read;  // callback gauges
};

struct Metrics::Family {
  std::string name;
  std::string help;
  int kind = kCounter;
  std::vector<std::unique_ptr<Series>> series;
};

Metrics::Metrics() = default;
Metrics::~Metrics() = default;

Metrics::TypeStats& Metrics::stats_for(const MessageInfo& info) {
  if (info.slot < kFastSlots) {
    if (TypeStats* s = by_slot_[info.slot].load(std::memory_order_acquire)) return *s;
  }
  std::lock_guard lock(mutex_);
  for (const auto& t : types_) {
    if (t->info == &info) return *t;
  }
  auto t = std::make_unique<TypeStats>();
  t->info = &info;
  t->name = std::string(info.name);
  TypeStats* raw = t.get();
  types_.push_back(std::move(t));
  if (info.slot < kFastSlots) by_slot_[info.slot].store(raw, std::memory_order_release);
  return *raw;
}

void Metrics::record(const MessageInfo& info, std::chrono::nanoseconds duration, const Error* error) {
  TypeStats& s = stats_for(info);
  const std::int64_t ns = std::max<std::int64_t>(0, duration.count());
  std::size_t b = 0;
  while (b < kBuckets && ns > kBucketNanos[b]) ++b;
  s.buckets[b].fetch_add(1, std::memory_order_relaxed);
  s.sum_ns.fetch_add(static_cast<std::uint64_t>(ns), std::memory_order_relaxed);
  s.handled.fetch_add(1, std::memory_order_relaxed);
  if (error == nullptr) return;
  std::lock_guard lock(s.failures_mutex);
  for (auto& [code, n] : s.failures) {
    if (code == error->code) {
      ++n;
      return;
    }
  }
  s.failures.emplace_back(error->code, 1);
}

const Metrics::TypeStats* Metrics::find_stats(std::string_view type) const {
  std::lock_guard lock(mutex_);
  for (const auto& t : types_) {
    if (t->name == type) return t.get();
  }
  return nullptr;
}

std::uint64_t Metrics::handled(std::string_view type) const {
  const TypeStats* s = find_stats(type);
  return s != nullptr ? s->handled.load(std::memory_order_relaxed) : 0;
}

std::uint64_t Metrics::failed(std::string_view type, std::string_view code) const {
  const TypeStats* s = find_stats(type);
  if (s == nullptr) return 0;
  std::lock_guard lock(s->failures_mutex);
  for (const auto& [c, n] : s->failures) {
    if (c == code) return n;
  }
  return 0;
}

std::uint64_t Metrics::bucket(std::string_view type, std::size_t i) const {
  const TypeStats* s = find_stats(type);
  return s != nullptr && i <= kBuckets ? s->buckets[i].load(std::memory_order_relaxed) : 0;
}

Metrics::Series& Metrics::series(std::string_view name, std::string_view help, int kind, const MetricLabels& labels) {
  if (!valid_name(name, true)) {
    throw Exception(make_error(errc::internal, "invalid metric name '" + std::string(name) + "'"));
  }
  if (name == kHandled || name == kFailed || name == kDuration) {
    throw Exception(make_error(errc::duplicate_handler, "metric name '" + std::string(name) + "' is catga's own"));
  }
  std::string label_text;
  for (const auto& [k, v] : labels) {
    if (!valid_name(k, false) || k.starts_with("__")) {
      throw Exception(
          make_error(errc::internal, "invalid label name '" + k + "' on metric '" + std::string(name) + "'"));
    }
    label_text += label_text.empty() ? "{" : ",";
    label_text.append(k).append("=\"");
    append_escaped(label_text, v, true);
    label_text += '"';
  }
  if (!label_text.empty()) label_text += '}';

  std::lock_guard lock(mutex_);
  Family* family = nullptr;
  for (const auto& f : families_) {
    if (f->name == name) family = f.get();
  }
  if (family == nullptr) {
    families_.push_back(std::make_unique<Family>());
    family = families_.back().get();
    family->name = std::string(name);
    family->help = std::string(help);
    family->kind = kind;
  } else if (family->kind != kind) {
    throw Exception(make_error(errc::duplicate_handler,
                               "metric '" + std::string(name) + "' is already registered as another kind"));
  }
  for (const auto& s : family->series) {
    if (s->label_text == label_text) return *s;
  }
  family->series.push_back(std::make_unique<Series>());
  Series& s = *family->series.back();
  s.labels = labels;
  s.label_text = std::move(label_text);
  if (kind == kHistogram) s.histogram = std::make_unique<MetricHistogram>();
  return s;
}

MetricCounter& Metrics::counter(std::string_view name, std::string_view help, const MetricLabels& labels) {
  return series(name, help, kCounter, labels).counter;
}

MetricGauge& Metrics::gauge(std::string_view name, std::string_view help, const MetricLabels& labels) {
  return series(name, help, kGauge, labels).gauge;
}

MetricHistogram& Metrics::histogram(std::string_view name, std::string_view help, const MetricLabels& labels) {
  return *series(name, help, kHistogram, labels).histogram;
}

void Metrics::gauge_callback(std::string_view name, std::string_view help, const MetricLabels& labels,
                             std::function<double()> read) {
  Series& s = series(name, help, kGauge, labels);
  std::lock_guard lock(mutex_);
  s.read = std::move(read);
}

std::string Metrics::render_prometheus() const {
  std::lock_guard lock(mutex_);
  std::vector<const TypeStats*> types;
  types.reserve(types_.size());
  for (const auto& t : types_) types.push_back(t.get());
  std::sort(types.begin(), types.end(), [](const TypeStats* a, const TypeStats* b) { return a->name < b->name; });

  std::string out;
  out.reserve(512 + types.size() * 2048);

  append_header(out, kHandled, "Handler calls finished (successes and failures), by message type.", "counter");
  for (const TypeStats* t : types) {
    open_type_labels(out, kHandled, t->name);
    out.append("} ").append(std::to_string(t->handled.load(std::memory_order_relaxed))).append("\n");
  }

  append_header(out, kFailed, "Handler calls that failed, by message type and error code.", "counter");
  for (const TypeStats* t : types) {
    std::vector<std::pair<std::string, std::uint64_t>> failures;
    {
      std::lock_guard flock(t->failures_mutex);
      failures = t->failures;
    }
    std::sort(failures.begin(), failures.end());
    for (const auto& [code, n] : failures) {
      open_type_labels(out, kFailed, t->name);
      out.append(",code=\"");
      append_escaped(out, code, true);
      out.append("\"} ").append(std::to_string(n)).append("\n");
    }
  }

  append_header(out, kDuration, "Time spent in the pipeline below this behavior, by message type.", "histogram");
  const std::string bucket_name = std::string(kDuration) + "_bucket";
  for (const TypeStats* t : types) {
    // _count is the sum of the buckets read here, so the exposition stays
    // self-consistent while other threads record.
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b <= kBuckets; ++b) {
      cumulative += t->buckets[b].load(std::memory_order_relaxed);
      open_type_labels(out, bucket_name, t->name);
      out.append(",le=\"").append(b < kBuckets ? kBucketLabels[b] : std::string_view("+Inf")).append("\"} ");
      out.append(std::to_string(cumulative)).append("\n");
    }
    open_type_labels(out, std::string(kDuration) + "_sum", t->name);
    out.append("} ");
    append_double(out, static_cast<double>(t->sum_ns.load(std::memory_order_relaxed)) / 1e9);
    out += '\n';
    open_type_labels(out, std::string(kDuration) + "_count", t->name);
    out.append("} ").append(std::to_string(cumulative)).append("\n");
  }

  for (const auto& f : families_) {
    append_header(out, f->name, f->help,
                  f->kind == kCounter ? "counter" : f->kind == kGauge ? "gauge" : "histogram");
    if (f->kind == kHistogram) {
      for (const auto& s : f->series) {
        // `{a="b",` or `{`: the le label follows.
        std::string open = s->label_text.empty() ? "{" : s->label_text.substr(0, s->label_text.size() - 1) + ",";
        const MetricHistogram& h = *s->histogram;
        std::uint64_t cumulative = 0;
        for (std::size_t b = 0; b <= kBuckets; ++b) {
          cumulative += h.bucket(b);
          out.append(f->name).append("_bucket").append(open).append("le=\"");
          out.append(b < kBuckets ? kBucketLabels[b] : std::string_view("+Inf")).append("\"} ");
          out.append(std::to_string(cumulative)).append("\n");
        }
        out.append(f->name).append("_sum").append(s->label_text).append(" ");
        append_double(out, static_cast<double>(h.sum_ns()) / 1e9);
        out.append("\n").append(f->name).append("_count").append(s->label_text).append(" ");
        out.append(std::to_string(cumulative)).append("\n");
      }
      continue;
    }
    for (const auto& s : f->series) {
      out.append(f->name).append(s->label_text).append(" ");
      if (f->kind == kCounter) {
        out.append(std::to_string(s->counter.value()));
      } else if (s->read) {
        double v;
        try {
          v = s->read();
        } catch (...) {
          v = std::nan("");  // a failing probe must not break the whole scrape
        }
        append_double(out, v);
      } else {
        append_double(out, s->gauge.value());
      }
      out += '\n';
    }
  }
  return out;
}

MetricsBehavior::MetricsBehavior(std::shared_ptr<Metrics> metrics, std::shared_ptr<Clock> clock)
    : metrics_(std::move(metrics)), clock_(clock ? std::move(clock) : Clock::system()) {
  if (!metrics_) throw Exception(make_error(errc::internal, "MetricsBehavior needs a Metrics registry"));
}

Status MetricsBehavior::handle(Invocation& inv, Next next) {
  const auto t0 = clock_->now();
  Status s = next();
  const auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(clock_->now() - t0);
  metrics_->record(inv.info, elapsed, s ? nullptr : &s.error());
  return s;
}

}  // namespace catga
