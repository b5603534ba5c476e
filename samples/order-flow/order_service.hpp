#pragma once
// OrderService: takes orders, drives the order saga, and records what happens
// to each order in an OrderRepository (event-sourced on NATS; idempotency
// keys in the "orders" bucket, saga state in "order_sagas").

#include <catga/saga/kv_saga_store.hpp>
#include <catga/saga/orchestrator.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "messages.hpp"
#include "order_record.hpp"
#include "order_repository.hpp"
#include "order_saga.hpp"
#include "service_core.hpp"

namespace order_flow {

// Settings of OrderService.
struct OrderServiceOptions {
  // Orchestrator settings; instance_id defaults to the service instance, so
  // a restarted instance resumes its own sagas at once, and sagas of an
  // instance that is gone are taken over once their lease expired.
  catga::SagaOptions saga = default_saga_options();
  OrderSagaTimings timings{};
  // Where orders are kept (Infrastructure::order_repository); null: one
  // KeyValue record per order in the "orders" bucket.
  std::shared_ptr<OrderRepository> repository{};

  static catga::SagaOptions default_saga_options() {
    catga::SagaOptions o;
    o.workers = 8;
    o.lease = std::chrono::seconds(10);
    o.recovery_interval = std::chrono::seconds(2);
    return o;
  }
};

// Handles PlaceOrder (also served remotely, queue group "order"),
// ConfirmOrder and CancelOrder, and BeginOrderProcessing (local, first saga
// step), each recording an event of the order (OrderPlaced, OrderProcessing,
// OrderConfirmed, OrderCancelled); sends ReserveInventory/ReleaseInventory/
// ChargePayment/RefundPayment to whichever instance serves them; consumes
// InventoryReserved, InventoryReleased, PaymentCharged and PaymentFailed
// (group "order-history") and records them on the order too.
//
//   order_flow::OrderService orders(env);
//   orders.start().value();
//   auto placed = orders.place(PlaceOrder{"c1", {{"A-1", 2}}, 40.0, "key-1"}).value();
//   auto record = orders.find(placed.order_id).value();   // std::optional<OrderRecord>
class OrderService final : public ServiceCore {
 public:
  explicit OrderService(ServiceEnv env, OrderServiceOptions options = {});
  ~OrderService() override;

  // Opens the buckets, starts the orchestrator and serving, resumes sagas.
  catga::Status start();
  // Stops driving sagas (they stay persisted) and stops serving.
  void stop();

  // Sends PlaceOrder through the pipeline, with `ctx` (its correlation id and
  // trace go to every message of the order's saga).
  catga::Result<PlaceOrderResult> place(const PlaceOrder& c, catga::Context ctx = catga::Context::next());
  // Cancels on behalf of `actor` (CancelOrder through the pipeline).
  catga::Status cancel(const std::string& order_id, const std::string& reason, const std::string& actor);

  catga::Result<std::optional<OrderRecord>> find(std::string_view order_id);
  // Orders (optionally with one status), oldest first, at most `limit`.
  catga::Result<std::vector<OrderRecord>> list(std::optional<OrderStatus> status, std::size_t limit);
  // Sagas of every instance by status ("running", "completed", ...).
  catga::Result<std::map<std::string, std::size_t>> saga_counts();
  // The order list's read-model counters (OrderRepository::read_model_counters).
  std::map<std::string, double> read_model_counters() { return options_.repository->read_model_counters(); }
  catga::Result<catga::SagaRecord> saga(std::string_view order_id);

  // Valid only after start().
  catga::SagaOrchestrator& orchestrator() noexcept { return *orchestrator_; }

 private:
  catga::Result<PlaceOrderResult> on_place(const PlaceOrder& c, catga::Context& ctx);
  catga::Status on_begin(const BeginOrderProcessing& c);
  catga::Status on_confirm(const ConfirmOrder& c);
  catga::Status on_cancel(const CancelOrder& c);
  // Notes what another service (or the saga) did to the order.
  catga::Status add_history(const std::string& order_id, const std::string& actor, OrderEvent event);

  OrderServiceOptions options_;
  catga::SagaDefinition<OrderSagaData> saga_;
  std::shared_ptr<catga::KeyValue> kv_;
  std::shared_ptr<catga::KvSagaStore> saga_store_;
  std::unique_ptr<catga::SagaOrchestrator> orchestrator_;
};

// Checks a PlaceOrder (what POST /orders and the validation behavior report).
void validate_place_order(const PlaceOrder& c, catga::ValidationErrors& errors);

}  // namespace order_flow
