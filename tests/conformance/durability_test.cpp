// Conformance: a group keeps its events while it has no member; where the
// transport is durable, across transport instances and broker restarts.
#include <doctest/doctest.h>

#include "conformance_support.hpp"

using namespace conformance;

namespace {

void publish_range(catga::Mediator& m, int from, int to) {
  for (int i = from; i < to; ++i) REQUIRE(m.publish(Placed{"e-" + std::to_string(i), i}));
}

}  // namespace

TEST_CASE("a group's subscription stopped and started again gets what was published meanwhile, nothing twice") {
  auto broker = make_broker();
  Node publisher(*broker, "publisher");
  Node node(*broker, "svc");
  Ledger ledger;
  auto handler = [&](const Placed& e) { ledger.add(e.id); };
  auto sub = node.mediator.subscribe<Placed>(group("resume"), handler);
  REQUIRE(sub);
  publish_range(publisher.mediator, 0, 10);
  REQUIRE(ledger.wait_total(10));
  REQUIRE(broker->settled(kWait));
  sub->stop();

  publish_range(publisher.mediator, 10, 20);
  auto again = node.mediator.subscribe<Placed>(group("resume"), handler);
  REQUIRE(again);
  REQUIRE(ledger.wait_total(20));
  REQUIRE(broker->settled(kWait));
  CHECK(ledger.total() == 20);
  CHECK(ledger.distinct() == 20);
  CHECK(ledger.max_count() == 1);
}

TEST_CASE("a group outlives its transport instance: a new instance resumes where the old one left off") {
  auto broker = make_broker();
  if (!broker->capabilities().durable_across_instances) {
    MESSAGE("skipped: this transport's groups do not outlive a transport instance");
    return;
  }
  Node publisher(*broker, "publisher");
  Ledger ledger;
  auto handler = [&](const Placed& e) { ledger.add(e.id); };
  {
    Node first(*broker, "svc-1");
    auto sub = first.mediator.subscribe<Placed>(group("resume"), handler);
    REQUIRE(sub);
    publish_range(publisher.mediator, 0, 10);
    REQUIRE(ledger.wait_total(10));
    REQUIRE(broker->settled(kWait));
  }  // the instance is gone, as after a process exit

  publish_range(publisher.mediator, 10, 20);
  Node second(*broker, "svc-2");
  auto sub = second.mediator.subscribe<Placed>(group("resume"), handler);
  REQUIRE(sub);
  REQUIRE(ledger.wait_total(20));
  REQUIRE(broker->settled(kWait));
  CHECK(ledger.total() == 20);
  CHECK(ledger.distinct() == 20);
  CHECK(ledger.max_count() == 1);
}

TEST_CASE("the broker restarts under live transports: events from before and after arrive, publishing resumes") {
  auto broker = make_broker();
  if (!broker->capabilities().restart) {
    MESSAGE("skipped: this transport has no broker that can restart");
    return;
  }
  Node publisher(*broker, "publisher");
  Node node(*broker, "svc");
  Ledger ledger;
  auto sub = node.mediator.subscribe<Placed>(group("billing"), [&](const Placed& e) { ledger.add(e.id); });
  REQUIRE(sub);
  publish_range(publisher.mediator, 0, 20);
  // Stored before the restart, not all handled yet: they must survive it.
  broker->restart();

  // A publish during the reconnect may fail with a retryable error: the
  // caller tries again (at-least-once is the publisher's job too).
  for (int i = 20; i < 40; ++i) {
    catga::Status s;
    for (int tries = 0; tries < 10; ++tries) {
      s = publisher.mediator.publish(Placed{"e-" + std::to_string(i), i}, with_id("e-" + std::to_string(i)));
      if (s || !s.error().retryable) break;
    }
    if (!s) FAIL("publish after the restart: " << s.error().code << ": " << s.error().message);
  }
  REQUIRE(catga::test::wait_for([&] { return ledger.distinct() == 40; }, kWait));
  REQUIRE(broker->settled(kWait));
  CHECK(ledger.distinct() == 40);
}
