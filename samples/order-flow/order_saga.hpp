#pragma once
// The order saga: processing → reserve stock → charge payment → confirm,
// undone in reverse order when a step fails.

#include <catga/saga/definition.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "messages.hpp"

namespace order_flow {

// What the saga carries from step to step (persisted with the saga).
struct OrderSagaData {
  std::string order_id;
  std::string customer;
  std::vector<OrderItem> items;
  double amount = 0.0;
  std::int64_t placed_ms = 0;
  std::string reserved_by;  // filled by the reserve step
  std::string payment_id;   // filled by the charge step
  std::string charged_by;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(OrderSagaData, order_id, customer, items, amount, placed_ms,
                                                reserved_by, payment_id, charged_by)

// Per-step settings (tests shorten them).
struct OrderSagaTimings {
  std::chrono::milliseconds step_timeout{std::chrono::seconds(5)};
  int step_attempts = 4;
  std::chrono::milliseconds retry_delay{std::chrono::milliseconds(200)};
  // Reserve and charge: while their outcome is unknown (the service is
  // restarting, a reply was lost), resend with the same command id this
  // long before giving up and compensating them (docs/sagas.md).
  std::chrono::milliseconds resolve_uncertain_for{std::chrono::seconds(30)};
  int compensation_attempts = 10;
  std::chrono::milliseconds compensation_delay{std::chrono::milliseconds(200)};
};

inline constexpr std::string_view kOrderSaga = "order";

// The steps, each with the command that undoes it:
//
//   step        action                 compensation
//   processing  BeginOrderProcessing   CancelOrder (reason = why the saga failed)
//   reserve     ReserveInventory       ReleaseInventory
//   charge      ChargePayment          RefundPayment
//   confirm     ConfirmOrder           -
//
// `actor` names who cancels ("saga:<instance>") in the order history.
//
//   auto saga = order_flow::order_saga("saga:order-1");
//   orchestrator.add(saga);
//   orchestrator.start(saga, order_id, OrderSagaData{...});
catga::SagaDefinition<OrderSagaData> order_saga(std::string actor, OrderSagaTimings timings = {});

}  // namespace order_flow
