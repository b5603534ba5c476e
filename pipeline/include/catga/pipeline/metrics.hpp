#pragma once
// Metrics: per-message-type counters and duration histograms, plus custom
// gauges and counters, rendered in the Prometheus text format.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catga/behavior.hpp"
#include "catga/pipeline/clock.hpp"

namespace catga {

// Label pairs of a custom metric, e.g. {{"group", "billing"}}.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// A monotonically increasing count, owned by a Metrics registry.
//
//   auto& sent = metrics->counter("orders_emailed_total", "Confirmation e-mails sent");
//   sent.inc();
class MetricCounter {
 public:
  void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// A value that goes up and down, owned by a Metrics registry.
//
//   auto& running = metrics->gauge("catga_sagas_running", "Sagas not yet finished");
//   running.add(1); ... running.add(-1);
class MetricGauge {
 public:
  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(double d) noexcept {
    double cur = value_.load(std::memory_order_relaxed);
    while (!value_.compare_exchange_weak(cur, cur + d, std::memory_order_relaxed)) {
    }
  }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class MetricHistogram;

// The registry. MetricsBehavior records into it; render_prometheus() gives
// the text a /metrics endpoint serves:
//
//   catga_messages_handled_total{type="PlaceOrder"} 42          (every finished call)
//   catga_messages_failed_total{type="PlaceOrder",code="validation"} 3
//   catga_handler_duration_seconds_bucket{type="PlaceOrder",le="0.001"} 40
//   ... _bucket{le="+Inf"}, _sum, _count
//
// Recording is lock-free for types already seen (atomics reached through a
// slot-indexed table); the first call of a type and the first failure with a
// new code take a lock. Custom gauges and counters, and gauges read by a
// callback at render time (consumer lag, open sagas), appear in the same text.
//
//   auto metrics = std::make_shared<catga::Metrics>();
//   mediator.use(std::make_shared<catga::MetricsBehavior>(metrics));
//   metrics->gauge_callback("catga_consumer_pending", "Messages waiting", {{"group", "billing"}},
//                           [&] { return double(consumer.pending()); });
//   std::string body = metrics->render_prometheus();
class Metrics {
 public:
  // Upper bounds of the duration buckets, in seconds (the le labels).
  static constexpr std::array<std::string_view, 18> kBucketLabels = {
      "0.00001", "0.00005", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
      "0.025",   "0.05",    "0.1",    "0.25",    "0.5",    "1",     "2.5",    "5",     "10"};
  static constexpr std::array<std::int64_t, 18> kBucketNanos = {
      10'000,      50'000,      100'000,       250'000,       500'000,       1'000'000,
      2'500'000,   5'000'000,   10'000'000,    25'000'000,    50'000'000,    100'000'000,
      250'000'000, 500'000'000, 1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};

  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Records one finished call of a message of `info`'s type; `error` is null
  // on success.
  void record(const MessageInfo& info, std::chrono::nanoseconds duration, const Error* error);

  // Reads back what was recorded (tests, health checks).
  std::uint64_t handled(std::string_view type) const;
  std::uint64_t failed(std::string_view type, std::string_view code) const;
  // Observations in the bucket with upper bound kBucketNanos[i] (not
  // cumulative); i == kBucketNanos.size() is the overflow bucket.
  std::uint64_t bucket(std::string_view type, std::size_t i) const;

  // A custom counter/gauge; asking again with the same name and labels
  // returns the same object. Names follow Prometheus rules
  // ([a-zA-Z_:][a-zA-Z0-9_:]*); a name already used by another kind throws
  // catga::Exception. References stay valid as long as the registry.
  MetricCounter& counter(std::string_view name, std::string_view help, const MetricLabels& labels = {});
  MetricGauge& gauge(std::string_view name, std::string_view help, const MetricLabels& labels = {});
  // A gauge whose value `read` returns at render time (called under the
  // registry's lock: keep it quick, and do not call back into the registry).
  void gauge_callback(std::string_view name, std::string_view help, const MetricLabels& labels,
                      std::function<double()> read);
  // A custom histogram of durations (name ending in _seconds), with the
  // buckets of kBucketNanos; like counter(), the same name and labels give
  // the same object.
  MetricHistogram& histogram(std::string_view name, std::string_view help, const MetricLabels& labels = {});

  // Everything, in the Prometheus text exposition format (version 0.0.4).
  std::string render_prometheus() const;

 private:
  struct TypeStats;
  struct Family;
  struct Series;

  TypeStats& stats_for(const MessageInfo& info);
  const TypeStats* find_stats(std::string_view type) const;
  Series& series(std::string_view name, std::string_view help, int kind, const MetricLabels& labels);

  static constexpr std::size_t kFastSlots = 1024;
  std::array<std::atomic<TypeStats*>, kFastSlots> by_slot_{};
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<TypeStats>> types_;  // owns every TypeStats
  std::vector<std::unique_ptr<Family>> families_;  // custom metrics, in registration order
};

// A distribution of durations, owned by a Metrics registry (buckets:
// Metrics::kBucketNanos). Lock-free: a few relaxed atomic adds per observation.
//
//   auto& lat = metrics->histogram("catga_publish_duration_seconds", "Publish until stored", {{"type", "X"}});
//   lat.observe(std::chrono::microseconds(350));
class MetricHistogram {
 public:
  static constexpr std::size_t kBuckets = Metrics::kBucketNanos.size();

  void observe(std::chrono::nanoseconds d) noexcept {
    const std::int64_t ns = d.count() < 0 ? 0 : d.count();
    std::size_t b = 0;
    while (b < kBuckets && ns > Metrics::kBucketNanos[b]) ++b;
    buckets_[b].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(static_cast<std::uint64_t>(ns), std::memory_order_relaxed);
  }
  // Observations in bucket i (not cumulative; i == kBuckets: above the last bound).
  std::uint64_t bucket(std::size_t i) const noexcept {
    return i <= kBuckets ? buckets_[i].load(std::memory_order_relaxed) : 0;
  }
  std::uint64_t count() const noexcept {
    std::uint64_t n = 0;
    for (const auto& b : buckets_) n += b.load(std::memory_order_relaxed);
    return n;
  }
  std::uint64_t sum_ns() const noexcept { return sum_ns_.load(std::memory_order_relaxed); }

 private:
  std::array<std::atomic<std::uint64_t>, kBuckets + 1> buckets_{};
  std::atomic<std::uint64_t> sum_ns_{0};
};

// Records every call's duration and outcome into a Metrics registry.
//
//   auto metrics = std::make_shared<catga::Metrics>();
//   mediator.use(std::make_shared<catga::MetricsBehavior>(metrics));
class MetricsBehavior final : public Behavior {
 public:
  explicit MetricsBehavior(std::shared_ptr<Metrics> metrics, std::shared_ptr<Clock> clock = nullptr);
  Status handle(Invocation& inv, Next next) override;
  const std::shared_ptr<Metrics>& metrics() const noexcept { return metrics_; }

 private:
  std::shared_ptr<Metrics> metrics_;
  std::shared_ptr<Clock> clock_;
};

}  // namespace catga
