#pragma once
// ValidationBehavior: rejects invalid messages before their handler runs.

#include <concepts>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "catga/behavior.hpp"
#include "catga/message.hpp"

namespace catga {

// One rule a message broke: which field, and what is wrong with it.
struct FieldError {
  std::string field;  // may be empty for rules about the whole message
  std::string message;

  friend bool operator==(const FieldError&, const FieldError&) = default;
};

// What a validator collects. Empty (and unallocated) while nothing failed.
//
//   catga::ValidationErrors e;
//   e.add("amount", "must be positive");
//   e.to_string();  // "amount: must be positive"
class ValidationErrors {
 public:
  void add(std::string field, std::string message) { errors_.push_back({std::move(field), std::move(message)}); }
  void add(FieldError error) { errors_.push_back(std::move(error)); }

  bool empty() const noexcept { return errors_.empty(); }
  std::size_t size() const noexcept { return errors_.size(); }
  auto begin() const noexcept { return errors_.begin(); }
  auto end() const noexcept { return errors_.end(); }
  const FieldError& operator[](std::size_t i) const noexcept { return errors_[i]; }

  // "field: message; field: message" (a field-less entry is just its message).
  std::string to_string() const;

 private:
  std::vector<FieldError> errors_;
};

// Runs the validators registered for a message's type; if any reports an
// error, fails with code `validation` (not retryable) and a message listing
// every field error, and the handler is not called. Messages of types with no
// validator pass through.
//
// Validators are `void(const M&, ValidationErrors&)`, or return the errors as
// `ValidationErrors` or `std::vector<FieldError>`. All validators of a type
// run, so the caller learns every problem at once.
//
//   auto validation = std::make_shared<catga::ValidationBehavior>();
//   validation->add<PlaceOrder>([](const PlaceOrder& c, catga::ValidationErrors& e) {
//     if (c.amount <= 0) e.add("amount", "must be positive");
//     if (c.customer.empty()) e.add("customer", "required");
//   });
//   mediator.use(validation);
//
// Register validators before dispatching starts (like handlers); lookups on
// the dispatch path are a vector index by MessageInfo::slot and allocate
// nothing when the message is valid.
class ValidationBehavior final : public Behavior {
 public:
  template <Message M, class F>
  ValidationBehavior& add(F validator) {
    if constexpr (std::is_invocable_v<F&, const M&, ValidationErrors&>) {
      add_erased(message_info<M>(), [f = std::move(validator)](const void* m, ValidationErrors& e) mutable {
        f(*static_cast<const M*>(m), e);
      });
    } else if constexpr (std::is_invocable_r_v<ValidationErrors, F&, const M&>) {
      add_erased(message_info<M>(), [f = std::move(validator)](const void* m, ValidationErrors& e) mutable {
        for (const auto& fe : static_cast<ValidationErrors>(f(*static_cast<const M*>(m)))) e.add(fe);
      });
    } else {
      static_assert(std::is_invocable_r_v<std::vector<FieldError>, F&, const M&>,
                    "catga: a validator of M must be callable as v(const M&, catga::ValidationErrors&), or as "
                    "v(const M&) returning catga::ValidationErrors or std::vector<catga::FieldError>");
      add_erased(message_info<M>(), [f = std::move(validator)](const void* m, ValidationErrors& e) mutable {
        for (auto& fe : static_cast<std::vector<FieldError>>(f(*static_cast<const M*>(m)))) e.add(std::move(fe));
      });
    }
    return *this;
  }

  Status handle(Invocation& inv, Next next) override;

  // Runs the validators of M without dispatching (for UIs, tests).
  template <Message M>
  ValidationErrors validate(const M& message) const {
    ValidationErrors errors;
    run(message_info<M>(), &message, errors);
    return errors;
  }

 private:
  using Validator = std::function<void(const void*, ValidationErrors&)>;

  void add_erased(const MessageInfo& info, Validator v);
  void run(const MessageInfo& info, const void* message, ValidationErrors& errors) const;

  std::vector<std::vector<Validator>> by_slot_;  // indexed by MessageInfo::slot
};

}  // namespace catga
