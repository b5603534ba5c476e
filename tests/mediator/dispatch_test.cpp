// send / query / publish, handler forms, missing and duplicate handlers,
// failing event handlers and exceptions turned into Errors.

#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "test_messages.hpp"

using namespace catga_test;

namespace {

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// A non-std exception type: still caught at the pipeline boundary.
struct Weird {};

}  // namespace

TEST_CASE("send runs the one handler of a command and returns its result") {
  catga::Mediator m;
  std::vector<PlaceOrder> seen;
  m.handle<PlaceOrder>([&](const PlaceOrder& c) {
    seen.push_back(c);
    return "order-" + c.customer;
  });
  catga::Result<std::string> r = m.send(PlaceOrder{"alice", {"A-1"}, 10});
  REQUIRE(r.ok());
  CHECK(*r == "order-alice");
  CHECK(r.value() == "order-alice");
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == PlaceOrder{"alice", {"A-1"}, 10});
}

TEST_CASE("a command without result returns Result<void>") {
  catga::Mediator m;
  int shipped = 0;
  m.handle<ShipOrder>([&](const ShipOrder& c) { shipped += c.priority; });
  catga::Status s = m.send(ShipOrder{"o-1", 2});
  CHECK(s.ok());
  CHECK(static_cast<bool>(s));
  CHECK_NOTHROW(s.value());
  CHECK(shipped == 2);
  static_assert(std::is_same_v<decltype(m.send(ShipOrder{})), catga::Status>);
}

TEST_CASE("query runs the one handler of a query") {
  catga::Mediator m;
  m.handle<GetPrice>([](const GetPrice& q) { return Price{"EUR", q.sku == "A-1" ? 150L : 0L}; });
  auto r = m.query(GetPrice{"A-1"});
  REQUIRE(r);
  CHECK(r->currency == "EUR");
  CHECK(r->cents == 150);
}

TEST_CASE("handlers may take the Context and return Result or Status") {
  catga::Mediator m;
  m.handle<PlaceOrder>([](const PlaceOrder& c, catga::Context& ctx) -> catga::Result<std::string> {
    if (c.amount <= 0) return catga::make_error("invalid_amount", "amount must be positive");
    return std::string(ctx.message_type);
  });
  m.handle<ShipOrder>([](const ShipOrder& c, catga::Context&) -> catga::Status {
    if (c.order_id.empty()) return catga::make_error("no_order", "order id required", true);
    return {};
  });
  auto ok = m.send(PlaceOrder{"a", {}, 1});
  REQUIRE(ok);
  CHECK(*ok == "PlaceOrder");

  auto bad = m.send(PlaceOrder{"a", {}, -1});
  REQUIRE_FALSE(bad);
  CHECK(bad.error() == catga::Error{"invalid_amount", "amount must be positive", false});
  CHECK_THROWS_AS((void)bad.value(), catga::Exception);
  CHECK(bad.value_or("fallback") == "fallback");

  CHECK(m.send(ShipOrder{"o-1", 0}).ok());
  auto s = m.send(ShipOrder{"", 0});
  REQUIRE_FALSE(s);
  CHECK(s.error().code == "no_order");
  CHECK(s.error().retryable);
  try {
    s.value();
    FAIL("Status::value() on an error must throw");
  } catch (const catga::Exception& e) {
    CHECK(e.error().code == "no_order");
    CHECK(contains(e.what(), "order id required"));
  }
}

TEST_CASE("a result convertible to the declared type is accepted") {
  catga::Mediator m;
  m.handle<PlaceOrder>([](const PlaceOrder&) { return "literal"; });  // const char* → std::string
  auto r = m.send(PlaceOrder{});
  REQUIRE(r);
  CHECK(*r == "literal");
}

TEST_CASE("a missing handler is an Error naming the message type") {
  catga::Mediator m;
  auto r = m.send(PlaceOrder{"a", {}, 1});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == catga::errc::no_handler);
  CHECK(contains(r.error().message, "PlaceOrder"));
  CHECK(contains(r.error().message, "command"));
  CHECK_FALSE(r.error().retryable);

  auto q = m.query(GetPrice{"A-1"});
  REQUIRE_FALSE(q);
  CHECK(q.error().code == catga::errc::no_handler);
  CHECK(contains(q.error().message, "GetPrice"));
  CHECK(contains(q.error().message, "query"));

  auto s = m.send(ShipOrder{"o", 1});
  REQUIRE_FALSE(s);
  CHECK(contains(s.error().message, "ShipOrder"));

  CHECK_FALSE(m.has_handler<PlaceOrder>());
  m.handle<PlaceOrder>([](const PlaceOrder&) { return std::string("x"); });
  CHECK(m.has_handler<PlaceOrder>());
  CHECK_FALSE(m.has_handler<GetPrice>());
}

TEST_CASE("a missing handler is reported for a type that only has behaviors") {
  catga::Mediator m;
  m.use<PlaceOrder>(catga::make_behavior([](catga::Invocation&, catga::Next next) { return next(); }));
  auto r = m.send(PlaceOrder{});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == catga::errc::no_handler);
}

TEST_CASE("publishing an event nobody handles succeeds") {
  catga::Mediator m;
  CHECK(m.publish(OrderPlaced{"o", 1}).ok());
  CHECK_FALSE(m.has_handler<OrderPlaced>());
}

TEST_CASE("registering a second handler of a command or query throws duplicate_handler") {
  catga::Mediator m;
  m.handle<PlaceOrder>([](const PlaceOrder&) { return std::string("first"); });
  try {
    m.handle<PlaceOrder>([](const PlaceOrder&) { return std::string("second"); });
    FAIL("a second handler must be refused");
  } catch (const catga::Exception& e) {
    CHECK(e.error().code == catga::errc::duplicate_handler);
    CHECK(contains(e.error().message, "PlaceOrder"));
  }
  // The first registration stays in place.
  CHECK(m.send(PlaceOrder{}).value() == "first");

  m.handle<GetPrice>([](const GetPrice&) { return Price{}; });
  CHECK_THROWS_AS(m.handle<GetPrice>([](const GetPrice&) { return Price{}; }), catga::Exception);
}

TEST_CASE("an event may have several handlers, run in registration order") {
  catga::Mediator m;
  std::vector<std::string> calls;
  m.on<OrderPlaced>([&](const OrderPlaced& e) { calls.push_back("billing:" + e.order_id); }, "billing");
  m.on<OrderPlaced>([&](const OrderPlaced& e, catga::Context&) { calls.push_back("mail:" + e.order_id); });
  CHECK(m.has_handler<OrderPlaced>());
  CHECK(m.publish(OrderPlaced{"o-1", 5}).ok());
  CHECK(calls == std::vector<std::string>{"billing:o-1", "mail:o-1"});
}

TEST_CASE("two event handlers with the same name are refused") {
  catga::Mediator m;
  m.on<OrderPlaced>([](const OrderPlaced&) {}, "billing");
  try {
    m.on<OrderPlaced>([](const OrderPlaced&) {}, "billing");
    FAIL("duplicate handler name must be refused");
  } catch (const catga::Exception& e) {
    CHECK(e.error().code == catga::errc::duplicate_handler);
    CHECK(contains(e.error().message, "billing"));
  }
  // Unnamed handlers get distinct default names.
  m.on<OrderPlaced>([](const OrderPlaced&) {});
  m.on<OrderPlaced>([](const OrderPlaced&) {});
  CHECK(m.publish(OrderPlaced{}).ok());
}

TEST_CASE("a failing event handler does not stop the others and is reported") {
  catga::Mediator m;
  std::vector<std::string> calls;
  m.on<OrderPlaced>(
      [&](const OrderPlaced&) -> catga::Status {
        calls.push_back("stock");
        return catga::make_error("out_of_stock", "sku A-1 has 0 left", false);
      },
      "stock");
  m.on<OrderPlaced>(
      [&](const OrderPlaced&) {
        calls.push_back("mail");
        throw std::runtime_error("smtp down");
      },
      "mail");
  m.on<OrderPlaced>([&](const OrderPlaced&) { calls.push_back("audit"); }, "audit");

  catga::Status s = m.publish(OrderPlaced{"o-1", 5});
  CHECK(calls == std::vector<std::string>{"stock", "mail", "audit"});
  REQUIRE_FALSE(s);
  CHECK(s.error().code == catga::errc::handler_failed);
  const auto& msg = s.error().message;
  CHECK(contains(msg, "2 failure"));
  CHECK(contains(msg, "OrderPlaced"));
  CHECK(contains(msg, "[stock] out_of_stock: sku A-1 has 0 left"));
  CHECK(contains(msg, "[mail] exception"));
  CHECK(contains(msg, "smtp down"));
  CHECK_FALSE(contains(msg, "audit"));
  // One failure is not retryable, so the whole publish is not.
  CHECK_FALSE(s.error().retryable);
}

TEST_CASE("event failures are retryable only when every failure is") {
  catga::Mediator m;
  m.on<OrderPlaced>([](const OrderPlaced&) -> catga::Status { return catga::make_error("busy", "db busy", true); });
  m.on<OrderPlaced>([](const OrderPlaced&) { throw std::runtime_error("flaky"); });
  auto s = m.publish(OrderPlaced{});
  REQUIRE_FALSE(s);
  CHECK(s.error().code == catga::errc::handler_failed);
  CHECK(s.error().retryable);
}

TEST_CASE("handler exceptions become Errors") {
  catga::Mediator m;
  SUBCASE("catga::Exception keeps its Error") {
    m.handle<PlaceOrder>([](const PlaceOrder&) -> std::string {
      throw catga::Exception({"payment_declined", "limit exceeded", true});
    });
    auto r = m.send(PlaceOrder{});
    REQUIRE_FALSE(r);
    CHECK(r.error() == catga::Error{"payment_declined", "limit exceeded", true});
  }
  SUBCASE("std::exception becomes code exception with its message") {
    m.handle<PlaceOrder>([](const PlaceOrder&) -> std::string { throw std::invalid_argument("bad sku"); });
    auto r = m.send(PlaceOrder{});
    REQUIRE_FALSE(r);
    CHECK(r.error().code == catga::errc::exception);
    CHECK(contains(r.error().message, "bad sku"));
  }
  SUBCASE("anything else becomes code exception too") {
    m.handle<ShipOrder>([](const ShipOrder&) { throw Weird{}; });
    auto s = m.send(ShipOrder{});
    REQUIRE_FALSE(s);
    CHECK(s.error().code == catga::errc::exception);
    CHECK(contains(s.error().message, "unknown exception"));
  }
  SUBCASE("queries too") {
    m.handle<GetPrice>([](const GetPrice&) -> Price { throw std::out_of_range("no such sku"); });
    auto r = m.query(GetPrice{"Z"});
    REQUIRE_FALSE(r);
    CHECK(r.error().code == catga::errc::exception);
    CHECK(contains(r.error().message, "no such sku"));
  }
}

TEST_CASE("messages without a JSON codec dispatch locally") {
  catga::Mediator m;
  m.handle<LocalOnly>([](const LocalOnly& c) { return c.n * 2; });
  CHECK(m.send(LocalOnly{21}).value() == 42);
}

TEST_CASE("the mediator keeps handler state and moves the handler in") {
  catga::Mediator m;
  auto counter = std::make_shared<int>(0);
  m.handle<Add>([counter](const Add& a) {
    ++*counter;
    return a.x + a.y;
  });
  CHECK(m.send(Add{1, 2}).value() == 3);
  CHECK(m.send(Add{3, 4}).value() == 7);
  CHECK(*counter == 2);
  CHECK(counter.use_count() == 2);  // one copy lives in the mediator
}
