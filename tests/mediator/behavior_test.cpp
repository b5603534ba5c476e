// Behaviors: registration order (global, then per type), short-circuit,
// calling next several times, what a behavior sees.

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_messages.hpp"

using namespace catga_test;

namespace {

// Appends its name to a shared trace before and after the rest of the chain.
class Recorder final : public catga::Behavior {
 public:
  Recorder(std::string name, std::vector<std::string>& trace) : name_(std::move(name)), trace_(trace) {}
  catga::Status handle(catga::Invocation&, catga::Next next) override {
    trace_.push_back(name_ + ">");
    auto s = next();
    trace_.push_back("<" + name_);
    return s;
  }

 private:
  std::string name_;
  std::vector<std::string>& trace_;
};

std::shared_ptr<catga::Behavior> recorder(std::string name, std::vector<std::string>& trace) {
  return std::make_shared<Recorder>(std::move(name), trace);
}

}  // namespace

TEST_CASE("behaviors run in registration order, global ones first, then per type") {
  catga::Mediator m;
  std::vector<std::string> trace;
  m.use(recorder("g1", trace));
  m.use<PlaceOrder>(recorder("t1", trace));
  m.use(recorder("g2", trace));  // global, registered after a type behavior: still before it
  m.use<PlaceOrder>(recorder("t2", trace));
  m.handle<PlaceOrder>([&](const PlaceOrder&) {
    trace.push_back("handler");
    return std::string("ok");
  });
  REQUIRE(m.send(PlaceOrder{}).ok());
  CHECK(trace == std::vector<std::string>{"g1>", "g2>", "t1>", "t2>", "handler", "<t2", "<t1", "<g2", "<g1"});
}

TEST_CASE("per-type behaviors apply to their type only; global ones to every type") {
  catga::Mediator m;
  std::vector<std::string> trace;
  m.handle<GetPrice>([&](const GetPrice&) {
    trace.push_back("price");
    return Price{};
  });
  m.on<OrderPlaced>([&](const OrderPlaced&) { trace.push_back("placed"); });
  // Registered after the handlers exist: the chains are rebuilt.
  m.use(recorder("g", trace));
  m.use<PlaceOrder>(recorder("only-place-order", trace));

  REQUIRE(m.query(GetPrice{}).ok());
  REQUIRE(m.publish(OrderPlaced{}).ok());
  CHECK(trace == std::vector<std::string>{"g>", "price", "<g", "g>", "placed", "<g"});
}

TEST_CASE("a behavior wraps each event handler separately and sees its key") {
  catga::Mediator m;
  std::vector<std::string> keys;
  m.use(catga::make_behavior([&](catga::Invocation& inv, catga::Next next) {
    keys.emplace_back(inv.handler_key);
    return next();
  }));
  m.on<OrderPlaced>([](const OrderPlaced&) {}, "billing");
  m.on<OrderPlaced>([](const OrderPlaced&) {});
  m.handle<Add>([](const Add& a) { return a.x + a.y; });
  REQUIRE(m.publish(OrderPlaced{}).ok());
  REQUIRE(m.send(Add{}).ok());
  CHECK(keys == std::vector<std::string>{"billing", "handler-2", ""});
}

TEST_CASE("a behavior sees the message, its type information and context") {
  catga::Mediator m;
  std::optional<PlaceOrder> seen;
  std::string type_name;
  std::string ctx_type;
  bool had_result_slot = false;
  m.use(catga::make_behavior([&](catga::Invocation& inv, catga::Next next) {
    type_name = std::string(inv.info.name);
    ctx_type = std::string(inv.context.message_type);
    had_result_slot = inv.result != nullptr;
    if (&inv.info == &catga::message_info<PlaceOrder>()) seen = inv.message_as<PlaceOrder>();
    return next();
  }));
  m.handle<PlaceOrder>([](const PlaceOrder&) { return std::string("x"); });
  m.handle<ShipOrder>([](const ShipOrder&) {});

  REQUIRE(m.send(PlaceOrder{"bob", {"S"}, 3}).ok());
  CHECK(seen == PlaceOrder{"bob", {"S"}, 3});
  CHECK(type_name == "PlaceOrder");
  CHECK(ctx_type == "PlaceOrder");
  CHECK(had_result_slot);

  REQUIRE(m.send(ShipOrder{}).ok());
  CHECK(type_name == "ShipOrder");
  CHECK_FALSE(had_result_slot);
}

TEST_CASE("a behavior may short-circuit with an error; the handler does not run") {
  catga::Mediator m;
  int handler_calls = 0;
  m.use<PlaceOrder>(
      catga::make_behavior<PlaceOrder>([](const PlaceOrder& c, catga::Context&, catga::Next next) -> catga::Status {
        if (c.amount > 1000) return catga::make_error(catga::errc::validation, "amount: too large");
        return next();
      }));
  m.handle<PlaceOrder>([&](const PlaceOrder&) {
    ++handler_calls;
    return std::string("placed");
  });
  auto rejected = m.send(PlaceOrder{"a", {}, 5000});
  REQUIRE_FALSE(rejected);
  CHECK(rejected.error().code == catga::errc::validation);
  CHECK(handler_calls == 0);
  CHECK(m.send(PlaceOrder{"a", {}, 5}).value() == "placed");
  CHECK(handler_calls == 1);
}

TEST_CASE("a behavior may short-circuit with a value (cache hit)") {
  catga::Mediator m;
  int handler_calls = 0;
  m.use<GetPrice>(catga::make_behavior([](catga::Invocation& inv, catga::Next next) -> catga::Status {
    if (inv.message_as<GetPrice>().sku == "cached") {
      static_cast<std::optional<Price>*>(inv.result)->emplace(Price{"EUR", 1});
      return {};
    }
    return next();
  }));
  m.handle<GetPrice>([&](const GetPrice&) {
    ++handler_calls;
    return Price{"EUR", 2};
  });
  CHECK(m.query(GetPrice{"cached"}).value() == Price{"EUR", 1});
  CHECK(handler_calls == 0);
  CHECK(m.query(GetPrice{"fresh"}).value() == Price{"EUR", 2});
  CHECK(handler_calls == 1);
}

TEST_CASE("skipping the handler without producing a value is an internal error, not a crash") {
  catga::Mediator m;
  m.use(catga::make_behavior([](catga::Invocation&, catga::Next) -> catga::Status { return {}; }));
  m.handle<PlaceOrder>([](const PlaceOrder&) { return std::string("never"); });
  auto r = m.send(PlaceOrder{});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == catga::errc::internal);
  CHECK(r.error().message.find("PlaceOrder") != std::string::npos);
}

TEST_CASE("a behavior may call next several times (retry)") {
  catga::Mediator m;
  int handler_calls = 0;
  std::vector<int> attempts_seen;
  m.use(catga::make_behavior([](catga::Invocation& inv, catga::Next next) {
    catga::Status s = next();
    for (int attempt = 2; !s && s.error().retryable && attempt <= 5; ++attempt) {
      inv.context.attempt = attempt;
      s = next();
    }
    return s;
  }));
  m.handle<PlaceOrder>([&](const PlaceOrder&, catga::Context& ctx) -> catga::Result<std::string> {
    attempts_seen.push_back(ctx.attempt);
    if (++handler_calls < 3) return catga::make_error("busy", "try again", true);
    return std::string("done");
  });
  auto r = m.send(PlaceOrder{});
  REQUIRE(r);
  CHECK(*r == "done");
  CHECK(handler_calls == 3);
  CHECK(attempts_seen == std::vector<int>{1, 2, 3});
}

TEST_CASE("calling next again after a failure resets nothing the handler owns") {
  // The result slot is filled by the successful call only.
  catga::Mediator m;
  int calls = 0;
  m.use(catga::make_behavior([](catga::Invocation&, catga::Next next) {
    (void)next();
    return next();
  }));
  m.handle<Add>([&](const Add& a) { return a.x + a.y + 10 * ++calls; });
  CHECK(m.send(Add{1, 1}).value() == 22);  // second call's value wins
  CHECK(calls == 2);
}

TEST_CASE("a throwing behavior becomes an Error at the pipeline boundary") {
  catga::Mediator m;
  m.use(catga::make_behavior(
      [](catga::Invocation&, catga::Next) -> catga::Status { throw std::logic_error("behavior bug"); }));
  m.handle<ShipOrder>([](const ShipOrder&) {});
  auto s = m.send(ShipOrder{});
  REQUIRE_FALSE(s);
  CHECK(s.error().code == catga::errc::exception);
  CHECK(s.error().message.find("behavior bug") != std::string::npos);
}

TEST_CASE("a behavior may add headers the handler sees") {
  catga::Mediator m;
  m.use(catga::make_behavior([](catga::Invocation& inv, catga::Next next) {
    inv.context.headers.set("Tenant", "acme");
    return next();
  }));
  m.handle<PlaceOrder>(
      [](const PlaceOrder&, catga::Context& ctx) { return std::string(ctx.headers.get("Tenant").value_or("none")); });
  CHECK(m.send(PlaceOrder{}).value() == "acme");
}

TEST_CASE("a null behavior is refused") {
  catga::Mediator m;
  CHECK_THROWS_AS(m.use(nullptr), catga::Exception);
  CHECK_THROWS_AS(m.use<PlaceOrder>(nullptr), catga::Exception);
}
