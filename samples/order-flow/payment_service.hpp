#pragma once
// PaymentService: one charge per order, in the "payments" KeyValue bucket
// shared by every replica.

#include <chrono>
#include <memory>
#include <string>

#include "messages.hpp"
#include "service_core.hpp"

namespace order_flow {

// Settings of PaymentService.
struct PaymentOptions {
  // Largest amount one charge may have, unless the bucket holds a
  // customer-specific limit at "limit.<customer>" (a JSON number).
  double default_limit = 500.0;
  // This customer is always declined (the demo's way to show a failed payment).
  std::string declined_customer = "declined";
  // How long the (pretend) card provider takes per charge: lets the demo
  // and the crash test have many sagas in flight at once.
  std::chrono::milliseconds latency{0};
};

// Money totals over every charge record (consistency checks, the demo):
// charged − refunded = what confirmed orders paid.
struct PaymentTotals {
  double charged = 0.0;
  double refunded = 0.0;
  int charges = 0;
  int refunds = 0;
  int declined = 0;
};

// Handles ChargePayment and RefundPayment (queue group "payment"). Each
// order has one record, "charge.<order>" = {"state":"charged|declined|refunded",
// "amount":..,"charged":bool,...}, written with a revision check, so a charge
// or refund repeated on any replica changes nothing the second time, and a
// refund that arrives before its charge (a timed-out step) stops that
// charge from happening later.
//
//   order_flow::PaymentService payment(env);
//   payment.start().value();
class PaymentService final : public ServiceCore {
 public:
  explicit PaymentService(ServiceEnv env, PaymentOptions options = {});

  catga::Status start();

  catga::Result<PaymentReceipt> charge(const ChargePayment& c);
  catga::Status refund(const RefundPayment& c);

  catga::Result<PaymentTotals> totals();
  // Every charge record, for GET /payments.
  catga::Result<nlohmann::json> snapshot();

 private:
  catga::Result<double> limit_of(const std::string& customer);

  PaymentOptions options_;
  std::shared_ptr<catga::KeyValue> kv_;
};

}  // namespace order_flow
