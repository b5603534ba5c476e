#pragma once
// SagaDefinition: a saga declared as ordered steps with compensations.

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "catga/mediator.hpp"

namespace catga {

// Header carrying the failure reason to compensation commands.
inline constexpr std::string_view kSagaReasonHeader = "Catga-Saga-Reason";
// Header carrying the saga id on every step command.
inline constexpr std::string_view kSagaIdHeader = "Catga-Saga-Id";

// A step as the orchestrator runs it: functions over the saga's JSON data.
//
// How a send of the step ends decides what happens next:
// - success: the next step;
// - failed (a non-retryable error, e.g. a business rule): the step did not
//   take effect; the steps before it are compensated;
// - uncertain (timeout, lost reply, `unavailable`, `deferred`, a handler
//   exception, any retryable error; `no_handler` once an earlier send may
//   have reached a handler): the step is resent with the SAME command id,
//   with backoff, so a receiver that did apply it answers from its
//   idempotency store instead of applying it twice. It is resent while
//   sends are left (max_attempts) or the outcome has been unknown for less
//   than resolve_uncertain_for. If it is still unknown then, the step itself
//   is compensated too, then the steps before it. A step that was ever
//   uncertain and then fails is compensated too (at worst a no-op;
//   trusting the failure could leave an effect in place).
// Compensations must therefore be idempotent and tolerate "nothing to undo",
// and should leave a mark (e.g. a refund record) that makes a late delivery
// of the step itself a no-op.
struct SagaStep {
  using Run = std::function<Status(Mediator&, nlohmann::json& data, Context ctx)>;
  std::string name;
  Run action;
  Run compensation;  // empty: nothing to undo
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};
  int max_attempts = 3;  // sends of the step while its failures are retryable or uncertain
  std::chrono::milliseconds retry_delay{std::chrono::milliseconds(100)};  // doubles per send
  // While the outcome is unknown, keep resending at least this long after it
  // became unknown, even past max_attempts (0: max_attempts alone decides).
  // Long enough to outlast a restart of the service serving the step.
  std::chrono::milliseconds resolve_uncertain_for{0};
};

// A saga type without its C++ data type: name, steps, compensation policy.
struct SagaType {
  std::string name;
  std::vector<SagaStep> steps;
  int compensation_attempts = 5;
  std::chrono::milliseconds compensation_delay{std::chrono::milliseconds(200)};  // doubles per attempt
};

// Declares a saga over `Data` (a JSON-codable struct holding what steps
// produce: ids, amounts...). Each step sends a command built from the data
// and may store its result back into the data; compensations see the data
// as it was when the saga failed.
//
//   auto order_saga = catga::SagaDefinition<OrderData>("order")
//       .step<ReserveInventory>("reserve",
//             [](const OrderData& d) { return ReserveInventory{d.order_id, d.items}; },
//             [](OrderData& d, const std::string& reservation) { d.reservation = reservation; })
//       .compensate<ReleaseInventory>([](const OrderData& d) { return ReleaseInventory{d.order_id}; })
//       .timeout(std::chrono::seconds(5))
//       .step<ChargePayment>("charge", [](const OrderData& d) { return ChargePayment{d.order_id, d.amount}; })
//       .compensate<RefundPayment>([](const OrderData& d) { return RefundPayment{d.order_id}; });
template <class Data>
class SagaDefinition {
  static_assert(JsonCodable<Data>, "catga: saga data must have a JSON codec (NLOHMANN_DEFINE_TYPE_*)");

 public:
  explicit SagaDefinition(std::string name) { type_.name = std::move(name); }

  // Adds a step sending the command `build(data)`; `take(data, result)`
  // stores what the step produced.
  template <Command C, class Build, class Take>
  SagaDefinition& step(std::string name, Build build, Take take) {
    static_assert(std::is_invocable_r_v<C, Build&, const Data&>,
                  "catga: a saga step's build function must be callable as C(const Data&)");
    SagaStep s;
    s.name = std::move(name);
    s.action = [build = std::move(build), take = std::move(take)](Mediator& m, nlohmann::json& json,
                                                                   Context ctx) -> Status {
      Data data = json.get<Data>();
      auto result = m.send(build(std::as_const(data)), std::move(ctx));
      if (!result) return std::move(result).error();
      if constexpr (std::is_void_v<result_t<C>>) {
        take(data);
      } else {
        take(data, *result);
      }
      json = data;
      return {};
    };
    type_.steps.push_back(std::move(s));
    return *this;
  }

  // Adds a step whose result is not kept.
  template <Command C, class Build>
  SagaDefinition& step(std::string name, Build build) {
    if constexpr (std::is_void_v<result_t<C>>) {
      return step<C>(std::move(name), std::move(build), [](Data&) {});
    } else {
      return step<C>(std::move(name), std::move(build), [](Data&, const result_t<C>&) {});
    }
  }

  // The compensation of the step added last: sends `build(data)`, or
  // `build(data, reason)` where reason says why the saga failed. It runs for
  // a completed step, and also for a step whose outcome stayed unknown, so
  // its handler must tolerate "nothing to undo" (and a second delivery).
  template <Command C, class Build>
  SagaDefinition& compensate(Build build) {
    static_assert(std::is_invocable_r_v<C, Build&, const Data&> ||
                      std::is_invocable_r_v<C, Build&, const Data&, std::string_view>,
                  "catga: a compensation's build function must be callable as C(const Data&) or "
                  "C(const Data&, std::string_view reason)");
    last().compensation = [build = std::move(build)](Mediator& m, nlohmann::json& json, Context ctx) -> Status {
      const Data data = json.get<Data>();
      auto make = [&] {
        if constexpr (std::is_invocable_r_v<C, Build&, const Data&, std::string_view>) {
          return build(data, ctx.headers.get(kSagaReasonHeader).value_or(std::string_view()));
        } else {
          return build(data);
        }
      };
      C command = make();  // before ctx is moved from
      auto result = m.send(command, std::move(ctx));
      if (!result) return std::move(result).error();
      return {};
    };
    return *this;
  }

  // Deadline of each attempt of the step added last.
  SagaDefinition& timeout(std::chrono::milliseconds t) {
    last().timeout = t;
    return *this;
  }
  // Retry policy of the step added last: at most `max_attempts` sends while
  // its failures are retryable or its outcome unknown, `first_delay` before
  // the second, doubling. Every send carries the same command id. A step
  // without compensation is resent past them while its outcome is unknown:
  // nothing could undo it if it took effect after the saga gave up.
  SagaDefinition& attempts(int max_attempts, std::chrono::milliseconds first_delay) {
    last().max_attempts = max_attempts < 1 ? 1 : max_attempts;
    last().retry_delay = first_delay;
    return *this;
  }
  // Keep resending the step added last for `d` after its outcome became
  // unknown (a lost reply, its service gone mid-step), even past its
  // attempts: e.g. a payment waits for the payment service to come back and
  // completes, rather than being refunded at once.
  SagaDefinition& resolve_uncertain_for(std::chrono::milliseconds d) {
    last().resolve_uncertain_for = d;
    return *this;
  }
  // How hard to try each compensation before giving up (compensation_failed).
  // A resend whose outcome is unknown keeps the compensation's command id;
  // after a definitive failure the next try gets a new one.
  SagaDefinition& compensation_retries(int attempts, std::chrono::milliseconds first_delay) {
    type_.compensation_attempts = attempts < 1 ? 1 : attempts;
    type_.compensation_delay = first_delay;
    return *this;
  }

  const SagaType& type() const noexcept { return type_; }
  const std::string& name() const noexcept { return type_.name; }

 private:
  SagaStep& last() {
    if (type_.steps.empty()) throw Exception(make_error(errc::internal, "saga '" + type_.name + "' has no step yet"));
    return type_.steps.back();
  }
  SagaType type_;
};

}  // namespace catga
