#include "order_saga.hpp"

namespace order_flow {

catga::SagaDefinition<OrderSagaData> order_saga(std::string actor, OrderSagaTimings t) {
  // [snippet:order-flow-saga]
  return catga::SagaDefinition<OrderSagaData>(std::string(kOrderSaga))
      .step<BeginOrderProcessing>("processing",
                                  [](const OrderSagaData& d) {
                                    return BeginOrderProcessing{d.order_id, d.customer, d.items, d.amount, d.placed_ms};
                                  })
      .compensate<CancelOrder>([actor](const OrderSagaData& d, std::string_view reason) {
        return CancelOrder{d.order_id, std::string(reason), actor};
      })
      .timeout(t.step_timeout)
      .attempts(t.step_attempts, t.retry_delay)
      .step<ReserveInventory>(
          "reserve",
          [](const OrderSagaData& d) {
            return ReserveInventory{d.order_id, d.items};
          },
          [](OrderSagaData& d, const Reservation& r) { d.reserved_by = r.reserved_by; })
      .compensate<ReleaseInventory>([](const OrderSagaData& d, std::string_view reason) {
        return ReleaseInventory{d.order_id, std::string(reason)};
      })
      .timeout(t.step_timeout)
      .attempts(t.step_attempts, t.retry_delay)
      .resolve_uncertain_for(t.resolve_uncertain_for)
      .step<ChargePayment>(
          "charge",
          [](const OrderSagaData& d) {
            return ChargePayment{d.order_id, d.customer, d.amount};
          },
          [](OrderSagaData& d, const PaymentReceipt& r) {
            d.payment_id = r.payment_id;
            d.charged_by = r.charged_by;
          })
      .compensate<RefundPayment>([](const OrderSagaData& d, std::string_view reason) {
        return RefundPayment{d.order_id, std::string(reason)};
      })
      .timeout(t.step_timeout)
      .attempts(t.step_attempts, t.retry_delay)
      .resolve_uncertain_for(t.resolve_uncertain_for)
      .step<ConfirmOrder>("confirm", [](const OrderSagaData& d) { return ConfirmOrder{d.order_id}; })
      .timeout(t.step_timeout)
      .attempts(t.step_attempts, t.retry_delay)
      .compensation_retries(t.compensation_attempts, t.compensation_delay);
  // [/snippet:order-flow-saga]
}

}  // namespace order_flow
