#pragma once
// What a handler may look like, checked by concepts with readable names.

#include <concepts>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "catga/context.hpp"
#include "catga/message.hpp"
#include "catga/result.hpp"

namespace catga {

namespace detail {
template <class T>
struct is_result : std::false_type {};
template <class T>
struct is_result<Result<T>> : std::true_type {};

// What a handler for a message answering R may return.
template <class Ret, class R>
concept ReturnsResultOf =
    (std::is_void_v<R> && (std::is_void_v<Ret> || std::same_as<Ret, Status>)) ||
    (!std::is_void_v<R> && (std::same_as<std::remove_cvref_t<Ret>, Result<R>> || std::convertible_to<Ret, R>));
}  // namespace detail

// A handler of M: callable as `h(const M&, catga::Context&)` or `h(const M&)`,
// returning `result_t<M>` or `Result<result_t<M>>` (for void: nothing or Status).
//
//   mediator.handle<GetPrice>([](const GetPrice& q) { return 4.2; });
//   mediator.handle<Ship>([](const Ship& c, catga::Context& ctx) -> catga::Status { ... });
template <class H, class M>
concept HandlerOf =
    Message<M> &&
    ((std::invocable<H&, const M&, Context&> &&
      detail::ReturnsResultOf<std::invoke_result_t<H&, const M&, Context&>, result_t<M>>) ||
     (std::invocable<H&, const M&> && detail::ReturnsResultOf<std::invoke_result_t<H&, const M&>, result_t<M>>));

// Turns the current exception into an Error (used at the pipeline boundary).
Error error_from_current_exception() noexcept;

namespace detail {

// Calls `h` with the forms HandlerOf allows and stores its outcome: the value
// goes to `out` (a std::optional<result_t<M>>, unused for void), failures
// come back as the Status. Exceptions become Errors here.
template <class M, class H>
Status call_handler(H& h, const M& message, Context& ctx, void* out) noexcept {
  using R = result_t<M>;
  try {
    auto invoke = [&]() -> decltype(auto) {
      if constexpr (std::invocable<H&, const M&, Context&>) {
        return h(message, ctx);
      } else {
        return h(message);
      }
    };
    using Ret = decltype(invoke());
    if constexpr (std::is_void_v<Ret>) {
      invoke();
      return {};
    } else if constexpr (std::same_as<std::remove_cvref_t<Ret>, Status>) {
      return invoke();
    } else if constexpr (is_result<std::remove_cvref_t<Ret>>::value) {
      auto r = invoke();
      if (!r) return std::move(r).error();
      static_cast<std::optional<R>*>(out)->emplace(std::move(*r));
      return {};
    } else {
      static_cast<std::optional<R>*>(out)->emplace(invoke());
      return {};
    }
  } catch (...) {
    return error_from_current_exception();
  }
}

}  // namespace detail
}  // namespace catga
