#include <doctest/doctest.h>

#include <atomic>

#include "nats_server.hpp"
#include "test_messages.hpp"
#include "wait_for.hpp"

TEST_CASE("smoke: publish and consume one event") {
  catga::test::NatsServer server;
  auto t = nt::make_transport(server);
  catga::Mediator m;
  m.attach(*t);
  std::atomic<int> seen{0};
  auto sub = m.subscribe<nt::OrderPlaced>(nt::group("billing"), [&](const nt::OrderPlaced& e) {
    CHECK(e.order_id == "A-1");
    seen++;
  });
  REQUIRE(sub);
  REQUIRE(m.publish(nt::OrderPlaced{"A-1", 3}));
  CHECK(catga::test::wait_for([&] { return seen.load() == 1; }, std::chrono::seconds(10)));
  auto h = t->health();
  CHECK(h.ready());
  REQUIRE(h.consumers.size() == 1);
  CHECK(t->stop(std::chrono::seconds(5)));
}
