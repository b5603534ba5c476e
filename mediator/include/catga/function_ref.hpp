#pragma once
// FunctionRef: a non-owning reference to a callable (no allocation).

#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

namespace catga {

template <class Signature>
class FunctionRef;

// Refers to a callable that outlives it; two pointers, trivially copyable.
// Used for `next` in behaviors so building the chain never allocates.
//
//   int twice(catga::FunctionRef<int(int)> f) { return f(f(1)); }
//   twice([](int x) { return x * 2; });  // 4
template <class R, class... Args>
class FunctionRef<R(Args...)> {
 public:
  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, FunctionRef> && std::is_invocable_r_v<R, F&, Args...>)
  FunctionRef(F&& f) noexcept  // NOLINT implicit
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* o, Args... args) -> R {
          return std::invoke(*static_cast<std::remove_reference_t<F>*>(o), std::forward<Args>(args)...);
        }) {}

  R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

 private:
  void* object_;
  R (*call_)(void*, Args...);
};

}  // namespace catga
