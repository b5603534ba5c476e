#include <doctest/doctest.h>

#include "catga/pipeline/validation.hpp"
#include "test_support.hpp"

using pt::PlaceOrder;

namespace {

struct ValidationFixture {
  catga::Mediator mediator;
  std::shared_ptr<catga::ValidationBehavior> validation = std::make_shared<catga::ValidationBehavior>();
  int calls = 0;

  ValidationFixture() {
    validation->add<PlaceOrder>([](const PlaceOrder& c, catga::ValidationErrors& e) {
      if (c.amount <= 0) e.add("amount", "must be positive");
      if (c.customer.empty()) e.add("customer", "required");
    });
    mediator.use(validation);
    mediator.handle<PlaceOrder>([this](const PlaceOrder& c) {
      ++calls;
      return "order-" + c.customer;
    });
  }
};

}  // namespace

TEST_CASE("ValidationBehavior: invalid message fails with code validation, field messages, handler not called") {
  ValidationFixture f;
  auto r = f.mediator.send(PlaceOrder{"", -5});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == catga::errc::validation);
  CHECK(r.error().message == "amount: must be positive; customer: required");
  CHECK_FALSE(r.error().retryable);
  CHECK(f.calls == 0);

  auto one = f.mediator.send(PlaceOrder{"ann", 0});
  REQUIRE_FALSE(one.ok());
  CHECK(one.error().message == "amount: must be positive");
  CHECK(f.calls == 0);
}

TEST_CASE("ValidationBehavior: a valid message reaches the handler") {
  ValidationFixture f;
  auto r = f.mediator.send(PlaceOrder{"ann", 12.5});
  REQUIRE(r.ok());
  CHECK(*r == "order-ann");
  CHECK(f.calls == 1);
}

TEST_CASE("ValidationBehavior: every validator of a type runs; list-returning forms are accepted") {
  ValidationFixture f;
  f.validation->add<PlaceOrder>([](const PlaceOrder& c) {
    std::vector<catga::FieldError> errors;
    if (c.amount > 1000) errors.push_back({"amount", "above the limit"});
    return errors;
  });
  f.validation->add<PlaceOrder>([](const PlaceOrder& c) {
    catga::ValidationErrors errors;
    if (c.customer == "banned") errors.add("", "customer is blocked");
    return errors;
  });
  auto r = f.mediator.send(PlaceOrder{"banned", 5000});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "amount: above the limit; customer is blocked");
  CHECK(f.calls == 0);
  CHECK(f.mediator.send(PlaceOrder{"ann", 10}).ok());
  CHECK(f.calls == 1);
}

TEST_CASE("ValidationBehavior: types without validators pass through") {
  ValidationFixture f;
  int ships = 0;
  f.mediator.handle<pt::Ship>([&](const pt::Ship&) { ++ships; });
  CHECK(f.mediator.send(pt::Ship{""}).ok());
  CHECK(ships == 1);
}

TEST_CASE("ValidationBehavior: validate() runs the validators without dispatching") {
  ValidationFixture f;
  auto errors = f.validation->validate(PlaceOrder{"", 1});
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] == catga::FieldError{"customer", "required"});
  CHECK(f.validation->validate(PlaceOrder{"a", 1}).empty());
  CHECK(f.validation->validate(pt::Ship{}).empty());
  CHECK(f.calls == 0);
}

TEST_CASE("ValidationBehavior: registered per type with Mediator::use<M>") {
  catga::Mediator m;
  auto v = std::make_shared<catga::ValidationBehavior>();
  v->add<pt::Add>([](const pt::Add& a, catga::ValidationErrors& e) {
    if (a.y == 0) e.add("y", "must not be zero");
  });
  m.use<pt::Add>(v);
  m.handle<pt::Add>([](const pt::Add& a) { return a.x / a.y; });
  CHECK(m.send(pt::Add{6, 3}).value() == 2);
  auto r = m.send(pt::Add{6, 0});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "y: must not be zero");
}
