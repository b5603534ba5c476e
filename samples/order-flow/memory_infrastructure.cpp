#include <catga/pipeline/in_memory_idempotency_store.hpp>
#include <catga/transport/in_memory.hpp>
#include <map>
#include <mutex>

#include "infrastructure.hpp"

namespace order_flow {
namespace {

class MemoryInfrastructure final : public Infrastructure {
 public:
  MemoryInfrastructure() : transport_(options()) {}

  catga::Transport& transport() override { return transport_; }

  catga::Result<std::shared_ptr<catga::KeyValue>> bucket(std::string_view name) override {
    std::lock_guard lock(mutex_);
    auto& b = buckets_[std::string(name)];
    if (!b) b = std::make_shared<catga::InMemoryKeyValue>();
    return std::shared_ptr<catga::KeyValue>(b);
  }

  std::shared_ptr<catga::IdempotencyStore> idempotency() override { return idempotency_; }

  catga::Result<std::shared_ptr<OrderRepository>> order_repository(const std::string&, const std::string&) override {
    auto orders = bucket("orders");
    if (!orders) return std::move(orders).error();
    return kv_order_repository(std::move(*orders));
  }

  std::string not_ready() override { return {}; }

  std::vector<ConsumerLag> consumer_lag() override {
    std::vector<ConsumerLag> out;
    for (const auto& s : transport_.stats()) {
      if (s.service) continue;
      out.push_back({s.type, s.group, s.pending + s.delayed + s.in_flight});
    }
    return out;
  }

  void stop() override { transport_.shutdown(); }

 private:
  static catga::InMemoryTransportOptions options() {
    catga::InMemoryTransportOptions o;
    o.serve_workers = 4;  // like the JetStream transport: several requests at once per service
    return o;
  }

  catga::InMemoryTransport transport_;
  std::shared_ptr<catga::InMemoryIdempotencyStore> idempotency_ = std::make_shared<catga::InMemoryIdempotencyStore>();
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<catga::InMemoryKeyValue>, std::less<>> buckets_;
};

}  // namespace

std::unique_ptr<Infrastructure> memory_infrastructure() { return std::make_unique<MemoryInfrastructure>(); }

}  // namespace order_flow
