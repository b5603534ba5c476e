#pragma once
// The JetStream transport's metrics (docs/operations.md, "Library metrics"). Series
// are looked up in the registry once — per subscription, or per message type
// on its first publish/request — and recorded with atomics only afterwards.
// Without a registry (JetStreamOptions::metrics null) nothing is looked up
// and every hook is one null check.

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "catga/message.hpp"
#include "catga/pipeline/metrics.hpp"
#include "catga/result.hpp"
#include "catga/wire.hpp"

namespace catga::nats::detail {

// One consumer group's series for one message type.
struct ConsumerMeters {
  MetricCounter* consumed = nullptr;       // acked after the handler succeeded
  MetricCounter* retried = nullptr;        // failed, nak'ed for a later redelivery
  MetricCounter* redelivered = nullptr;    // received with a delivery count > 1
  MetricCounter* dead_lettered = nullptr;  // copied to the dead letters and terminated
  MetricHistogram* ack_latency = nullptr;  // stored by the stream → acked by this member
  MetricGauge* lag = nullptr;              // unordered groups only (see docs)

  static ConsumerMeters resolve(Metrics& m, std::string_view type, std::string_view group, bool with_lag) {
    const MetricLabels labels{{"type", std::string(type)}, {"group", std::string(group)}};
    ConsumerMeters c;
    c.consumed = &m.counter("catga_messages_consumed_total",
                            "Deliveries handled successfully and acked, by type and consumer group.", labels);
    c.retried = &m.counter("catga_messages_retried_total",
                           "Deliveries whose handler failed retryably, nak'ed for a later redelivery.", labels);
    c.redelivered = &m.counter("catga_messages_redelivered_total",
                               "Deliveries received again (JetStream delivery count above 1).", labels);
    c.dead_lettered = &m.counter("catga_messages_dead_lettered_total",
                                 "Messages copied to the dead-letter stream and terminated.", labels);
    c.ack_latency = &m.histogram("catga_ack_latency_seconds",
                                 "From the stream storing a message to this consumer acking it (server and "
                                 "member clocks).",
                                 labels);
    if (with_lag) {
      c.lag = &m.gauge("catga_consumer_lag_messages",
                       "Messages in the stream not yet delivered to the group, as of this member's latest delivery.",
                       labels);
    }
    return c;
  }
};

// One event type's publish series.
struct PublishMeters {
  MetricCounter* published = nullptr;
  MetricHistogram* duration = nullptr;

  static PublishMeters resolve(Metrics& m, std::string_view type) {
    const MetricLabels labels{{"type", std::string(type)}};
    return {&m.counter("catga_messages_published_total",
                       "Events the stream stored (at-most-once: sent), by type.", labels),
            &m.histogram("catga_publish_duration_seconds",
                         "From publish until the stream acknowledged it, retries included.", labels)};
  }
};

// One request type's client series (failures: request_failed()).
struct RequestMeters {
  MetricCounter* ok = nullptr;
  MetricHistogram* duration = nullptr;

  static RequestMeters resolve(Metrics& m, std::string_view type) {
    return {&m.counter("catga_requests_total", "Remote requests by type and outcome (ok or the error code).",
                       {{"type", std::string(type)}, {"outcome", "ok"}}),
            &m.histogram("catga_request_duration_seconds", "From sending a remote request until its reply or error.",
                         {{"type", std::string(type)}})};
  }
};

// Failures are counted by error code, a series found when it happens (a
// lock and a lookup: failures are rare, and codes are a small set).
inline void count_failure(Metrics& m, std::string_view family, std::string_view help, std::string_view type,
                          std::string_view label, std::string_view code) {
  m.counter(family, help, {{"type", std::string(type)}, {std::string(label), std::string(code)}}).inc();
}

// The outcome a reply body reports: "ok", or the error code inside it.
// Our own encoder starts a success with {"ok":true (keys sorted); anything
// else is parsed.
inline std::string reply_outcome(std::string_view body) {
  if (body.starts_with(R"({"ok":true)")) return "ok";
  auto r = wire::decode_reply(body);
  return r ? std::string("ok") : r.error().code;
}

// Meters of type M by MessageInfo::slot: made on a type's first use (under
// a lock), found with one atomic load afterwards.
template <class M>
class MetersByType {
 public:
  // Before any get() (TransportState is set up before it is shared).
  void use(std::shared_ptr<Metrics> metrics) noexcept { metrics_ = std::move(metrics); }

  Metrics* registry() const noexcept { return metrics_.get(); }
  // Null without a registry.
  const M* get(const MessageInfo& info) {
    if (!metrics_) return nullptr;
    if (info.slot < kSlots) {
      if (const M* m = by_slot_[info.slot].load(std::memory_order_acquire)) return m;
    }
    std::lock_guard lock(mu_);
    for (const auto& [i, m] : made_) {
      if (i == &info) return m.get();
    }
    made_.emplace_back(&info, std::make_unique<M>(M::resolve(*metrics_, info.name)));
    const M* m = made_.back().second.get();
    if (info.slot < kSlots) by_slot_[info.slot].store(m, std::memory_order_release);
    return m;
  }

 private:
  static constexpr std::size_t kSlots = 1024;
  std::shared_ptr<Metrics> metrics_;
  std::array<std::atomic<const M*>, kSlots> by_slot_{};
  std::mutex mu_;
  std::vector<std::pair<const MessageInfo*, std::unique_ptr<M>>> made_;
};

}  // namespace catga::nats::detail
