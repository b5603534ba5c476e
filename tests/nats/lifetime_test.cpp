// What must outlive what (jetstream_transport.hpp, docs/transports.md,
// "Lifetimes"): a Subscription may outlive its JetStreamTransport, whose
// destruction stops it; the mediator is declared first so it outlives both.
#include <doctest/doctest.h>

#include <atomic>

#include "nats_server.hpp"
#include "test_messages.hpp"
#include "wait_for.hpp"

using catga::test::wait_for;
using namespace std::chrono_literals;

TEST_CASE("a subscription outliving its JetStream transport is stopped by it and harmless to destroy later") {
  catga::test::NatsServer server;
  catga::Mediator m;  // first: destroyed last
  auto transport = nt::make_transport(server);
  m.attach(*transport);
  std::atomic<int> handled{0};
  auto sub = m.subscribe<nt::OrderPlaced>({.group = "billing"}, [&](const nt::OrderPlaced&) { ++handled; }).value();
  REQUIRE(m.publish(nt::OrderPlaced{"a", 1}));
  REQUIRE(wait_for([&] { return handled.load() == 1; }));

  m.detach();
  transport.reset();  // stops the subscription, waits for its handler calls
  sub.stop();  // harmless after the transport is gone
  CHECK_FALSE(sub.active());
  CHECK(handled.load() == 1);
}
