// Per-subscription delivery settings (SubscribeOptions::ack_wait, ::start)
// on InMemoryTransport: it keeps no history and has no ack deadline, so it
// honours start = new_only (what it always does) and refuses the rest with a
// `validation` error instead of ignoring them.

#include <doctest/doctest.h>

#include "test_support.hpp"

using catga::InMemoryTransport;
using catga::Mediator;
using catga::StartFrom;
using namespace tt;
using namespace std::chrono_literals;

namespace {

catga::Result<catga::Subscription> subscribe(Mediator& m, catga::SubscribeOptions o) {
  return m.subscribe<OrderPlaced>(std::move(o), [](const OrderPlaced&) {});
}

}  // namespace

TEST_CASE("in-memory: ack_wait is refused, naming the setting") {
  InMemoryTransport transport;
  Mediator m;
  m.attach(transport);
  auto sub = subscribe(m, {.group = "billing", .ack_wait = 5s});
  REQUIRE_FALSE(sub);
  CHECK(sub.error().code == catga::errc::validation);
  CHECK(sub.error().message.find("ack_wait") != std::string::npos);
}

TEST_CASE("in-memory: a start other than new_only is refused") {
  InMemoryTransport transport;
  Mediator m;
  m.attach(transport);
  for (const auto& start : {StartFrom::all(), StartFrom::since(std::chrono::system_clock::now())}) {
    auto sub = subscribe(m, {.group = "billing", .start = start});
    REQUIRE_FALSE(sub);
    CHECK(sub.error().code == catga::errc::validation);
    CHECK(sub.error().message.find("SubscribeOptions::start") != std::string::npos);
  }
  // Ordered groups check the same settings.
  std::vector<catga::TypeHandler> handlers;
  handlers.push_back({"OrderPlaced", [](catga::Delivery&) { return catga::Status{}; }});
  auto ordered = transport.subscribe_ordered({.group = "history", .keyed = true, .start = StartFrom::all()}, handlers);
  REQUIRE_FALSE(ordered);
  CHECK(ordered.error().code == catga::errc::validation);
  auto ordered_ack = transport.subscribe_ordered({.group = "history", .keyed = true, .ack_wait = 1s}, handlers);
  REQUIRE_FALSE(ordered_ack);
  CHECK(ordered_ack.error().code == catga::errc::validation);
}

TEST_CASE("in-memory: start = new_only is honoured: the group gets what is published after it exists") {
  InMemoryTransport transport;
  Mediator m;
  m.attach(transport);
  Recorder<std::string> early, fresh;
  auto early_sub = m.subscribe<OrderPlaced>(opts("early"), [&](const OrderPlaced& e) { early.add(e.order_id); });
  REQUIRE(early_sub);
  REQUIRE(m.publish(OrderPlaced{"before", 1}));
  REQUIRE(early.wait_size(1));
  auto fresh_sub = m.subscribe<OrderPlaced>({.group = "fresh", .start = StartFrom::new_only()},
                                            [&](const OrderPlaced& e) { fresh.add(e.order_id); });
  REQUIRE(fresh_sub);
  REQUIRE(m.publish(OrderPlaced{"after", 2}));
  REQUIRE(fresh.wait_size(1));
  REQUIRE(transport.wait_idle(kWait));
  CHECK(fresh.items() == std::vector<std::string>{"after"});
  CHECK(early.items() == std::vector<std::string>{"before", "after"});
}
