#pragma once
// Behaviors: code that wraps every handler call (logging, retry, ...).

#include <cassert>
#include <memory>
#include <string_view>
#include <type_traits>
#include <utility>

#include "catga/context.hpp"
#include "catga/function_ref.hpp"
#include "catga/message.hpp"
#include "catga/result.hpp"

namespace catga {

// One handler call as behaviors see it, without the message's C++ type.
struct Invocation {
  const MessageInfo& info;
  const void* message;
  Context& context;
  // std::optional<result_t<M>>* for messages with a result, else nullptr.
  // Behaviors that replay results (idempotency) use info.encode_result /
  // info.decode_result on it.
  void* result;
  // Which handler runs: empty for commands and queries, the handler's name for
  // a local event handler, "<group>" for a consumer-group subscription.
  std::string_view handler_key;

  template <Message M>
  const M& message_as() const noexcept {
    assert(&info == &message_info<M>());
    return *static_cast<const M*>(message);
  }
};

// Calls the rest of the chain (the next behavior, finally the handler).
// May be called several times (retry) or not at all (short-circuit).
using Next = FunctionRef<Status()>;

// A link of the pipeline. Register with Mediator::use (all messages) or
// Mediator::use<M> (one type); they run in registration order, global first.
//
//   struct Stopwatch : catga::Behavior {
//     catga::Status handle(catga::Invocation& inv, catga::Next next) override {
//       auto t0 = std::chrono::steady_clock::now();
//       auto s = next();
//       record(inv.info.name, std::chrono::steady_clock::now() - t0);
//       return s;
//     }
//   };
//   mediator.use(std::make_shared<Stopwatch>());
class Behavior {
 public:
  virtual ~Behavior() = default;
  virtual Status handle(Invocation& inv, Next next) = 0;
};

namespace detail {
template <class F>
class LambdaBehavior final : public Behavior {
 public:
  explicit LambdaBehavior(F f) : f_(std::move(f)) {}
  Status handle(Invocation& inv, Next next) override { return f_(inv, next); }

 private:
  F f_;
};

template <Message M, class F>
class TypedLambdaBehavior final : public Behavior {
 public:
  explicit TypedLambdaBehavior(F f) : f_(std::move(f)) {}
  Status handle(Invocation& inv, Next next) override { return f_(inv.message_as<M>(), inv.context, next); }

 private:
  F f_;
};
}  // namespace detail

// A behavior from a lambda `(Invocation&, Next) -> Status`.
//
//   mediator.use(catga::make_behavior([](catga::Invocation& inv, catga::Next next) {
//     return next();
//   }));
template <class F>
  requires std::is_invocable_r_v<Status, F&, Invocation&, Next>
std::shared_ptr<Behavior> make_behavior(F f) {
  return std::make_shared<detail::LambdaBehavior<F>>(std::move(f));
}

// A behavior for one message type from `(const M&, Context&, Next) -> Status`.
//
//   mediator.use<PlaceOrder>(catga::make_behavior<PlaceOrder>(
//       [](const PlaceOrder& c, catga::Context&, catga::Next next) -> catga::Status {
//         if (c.amount > 1e6) return catga::make_error("limit", "too large");
//         return next();
//       }));
template <Message M, class F>
  requires std::is_invocable_r_v<Status, F&, const M&, Context&, Next>
std::shared_ptr<Behavior> make_behavior(F f) {
  return std::make_shared<detail::TypedLambdaBehavior<M, F>>(std::move(f));
}

}  // namespace catga
