// Conformance: typed publish and consume; consumer groups.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "conformance_support.hpp"

using namespace conformance;
using namespace std::chrono_literals;

TEST_CASE("a published event reaches a subscriber typed, with its message id and correlation") {
  auto broker = make_broker();
  Node publisher(*broker, "publisher");
  Node consumer(*broker, "consumer");
  std::mutex mu;
  std::vector<std::pair<Placed, catga::Context>> seen;
  auto sub = consumer.mediator.subscribe<Placed>(group("billing"), [&](const Placed& e, catga::Context& ctx) {
    std::lock_guard lock(mu);
    seen.emplace_back(e, ctx);
  });
  REQUIRE(sub);

  auto ctx = with_id("placed-1");
  const auto correlation = ctx.correlation_id.text().str();
  REQUIRE(publisher.mediator.publish(Placed{"A-1", 42}, ctx));
  REQUIRE(catga::test::wait_for([&] {
    std::lock_guard lock(mu);
    return !seen.empty();
  }, kWait));
  REQUIRE(broker->settled(kWait));
  std::lock_guard lock(mu);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].first.id == "A-1");
  CHECK(seen[0].first.n == 42);
  CHECK(seen[0].second.message_id.text().str() == "placed-1");
  CHECK(seen[0].second.correlation_id.text().str() == correlation);
  CHECK(seen[0].second.attempt == 1);
}

TEST_CASE("two members of a group share its events, each handled once; a second group gets every event") {
  auto broker = make_broker();
  Node a(*broker, "billing-a");
  Node b(*broker, "billing-b");
  Node audit(*broker, "audit");
  Node publisher(*broker, "publisher");
  Ledger billing;
  Ledger audited;
  // A little work per event, so that neither member can drain the group
  // before the other takes part.
  auto sub_a = a.mediator.subscribe<Placed>(group("billing"), [&](const Placed& e) {
    std::this_thread::sleep_for(1ms);
    billing.add(e.id, "a");
  });
  auto sub_b = b.mediator.subscribe<Placed>(group("billing"), [&](const Placed& e) {
    std::this_thread::sleep_for(1ms);
    billing.add(e.id, "b");
  });
  auto sub_audit = audit.mediator.subscribe<Placed>(group("audit"), [&](const Placed& e) { audited.add(e.id); });
  REQUIRE(sub_a);
  REQUIRE(sub_b);
  REQUIRE(sub_audit);

  constexpr int kEvents = 1000;
  for (int i = 0; i < kEvents; ++i) REQUIRE(publisher.mediator.publish(Placed{"p-" + std::to_string(i), i}));

  REQUIRE(billing.wait_total(kEvents));
  REQUIRE(audited.wait_total(kEvents));
  REQUIRE(broker->settled(kWait));
  CHECK(billing.total() == kEvents);
  CHECK(billing.distinct() == kEvents);
  CHECK(billing.max_count() == 1);
  CHECK(billing.by("a") > 0);
  CHECK(billing.by("b") > 0);
  CHECK(audited.total() == kEvents);
  CHECK(audited.distinct() == kEvents);
  CHECK(audited.max_count() == 1);
}
