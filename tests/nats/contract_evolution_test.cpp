// Contracts that evolve during a rolling upgrade (issue 22): producers and
// consumers built with different versions of a message, over JetStream with
// the library's default options. Version 2 adds fields with defaults; a
// version-1 body lacks them, a version-2 body has fields version 1 does not
// know. Neither is dead-lettered; what each side reads is documented in
// docs/wire-format.md ("Evolving a message"). A field declared required
// (CATGA_REQUIRED) is the exception: a body without it is dead-lettered.
#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "nats_server.hpp"
#include "test_messages.hpp"
#include "wait_for.hpp"

using catga::test::wait_for;
using namespace std::chrono_literals;

namespace v1 {
struct OrderPlaced {
  std::string order_id;
  std::int64_t cents = 0;
};
CATGA_EVENT(OrderPlaced, order_id, cents)
struct Quote {
  std::string sku;
};
struct Price {
  std::int64_t cents = 0;
};
CATGA_STRUCT(Price, cents)
CATGA_QUERY(Quote, Price, sku)
}  // namespace v1

namespace v2 {
struct OrderPlaced {
  std::string order_id;
  std::int64_t cents = 0;
  std::string currency = "EUR";  // added in version 2
  int priority = 0;              // added in version 2
  CATGA_REQUIRED(order_id)
};
CATGA_EVENT(OrderPlaced, order_id, cents, currency, priority)
struct Quote {
  std::string sku;
  int quantity = 1;  // added in version 2
};
struct Price {
  std::int64_t cents = 0;
  std::string currency = "EUR";  // added in version 2
};
CATGA_STRUCT(Price, cents, currency)
CATGA_QUERY(Quote, Price, sku, quantity)
}  // namespace v2

namespace v3 {
// Version 3 makes `currency` required: version-1 bodies lack it.
struct OrderPlaced {
  std::string order_id;
  std::int64_t cents = 0;
  std::string currency;
  int priority = 0;
  CATGA_REQUIRED(order_id, currency)
};
CATGA_EVENT(OrderPlaced, order_id, cents, currency, priority)
}  // namespace v3

namespace {

// A service process: its own connection, transport (default options) and
// mediator.
struct Service {
  Service(const catga::test::NatsServer& server, std::string name)
      : transport(nt::make_transport(server, catga::nats::JetStreamOptions{}, std::move(name))) {
    mediator.attach(*transport);
  }
  std::unique_ptr<catga::nats::JetStreamTransport> transport;
  catga::Mediator mediator;
};

template <class E>
struct Received {
  std::mutex mu;
  std::vector<E> events;
  std::atomic<int> count{0};
  void add(const E& e) {
    std::lock_guard lock(mu);
    events.push_back(e);
    ++count;
  }
};

std::uint64_t dead_lettered(catga::nats::JetStreamTransport& t) { return t.health().dead_letters; }

constexpr int kEvents = 50;

}  // namespace

TEST_CASE("rolling upgrade: a version-1 producer's events reach a version-2 consumer with the new fields' defaults") {
  catga::test::NatsServer server;
  Service producer(server, "producer-v1");
  Service consumer(server, "consumer-v2");
  Received<v2::OrderPlaced> got;
  auto sub = consumer.mediator.subscribe<v2::OrderPlaced>(nt::group("billing"),
                                                         [&](const v2::OrderPlaced& e) { got.add(e); })
                 .value();
  for (int i = 0; i < kEvents; ++i) {
    REQUIRE(producer.mediator.publish(v1::OrderPlaced{"o-" + std::to_string(i), 100 + i}));
  }
  REQUIRE(wait_for([&] { return got.count.load() == kEvents; }, 60s));
  std::lock_guard lock(got.mu);
  for (const auto& e : got.events) {
    CHECK(e.order_id.rfind("o-", 0) == 0);
    CHECK(e.cents >= 100);
    CHECK(e.currency == "EUR");
    CHECK(e.priority == 0);
  }
  CHECK(dead_lettered(*consumer.transport) == 0);
}

TEST_CASE("rolling upgrade: a version-2 producer's events reach a version-1 consumer, the new fields ignored") {
  catga::test::NatsServer server;
  Service producer(server, "producer-v2");
  Service consumer(server, "consumer-v1");
  Received<v1::OrderPlaced> got;
  auto sub = consumer.mediator.subscribe<v1::OrderPlaced>(nt::group("billing"),
                                                         [&](const v1::OrderPlaced& e) { got.add(e); })
                 .value();
  for (int i = 0; i < kEvents; ++i) {
    REQUIRE(producer.mediator.publish(v2::OrderPlaced{"o-" + std::to_string(i), 100 + i, "USD", 2}));
  }
  REQUIRE(wait_for([&] { return got.count.load() == kEvents; }, 60s));
  std::lock_guard lock(got.mu);
  for (const auto& e : got.events) CHECK(e.cents >= 100);
  CHECK(dead_lettered(*consumer.transport) == 0);
}

TEST_CASE("rolling upgrade: requests and replies between versions, both ways") {
  catga::test::NatsServer server;
  {
    Service old_service(server, "quotes-v1");
    Service new_client(server, "client-v2");
    new_client.mediator.route_remote<v2::Quote>();
    old_service.mediator.handle<v1::Quote>([](const v1::Quote& q) { return v1::Price{q.sku == "A" ? 250 : 1}; });
    auto served = old_service.mediator.serve<v1::Quote>("quotes").value();
    auto p = new_client.mediator.query(v2::Quote{"A", 3});
    REQUIRE_MESSAGE(p, (p ? "" : p.error().message));
    CHECK(p->cents == 250);
    CHECK(p->currency == "EUR");  // the old service's reply has no currency
  }
  Service new_service(server, "quotes-v2");
  Service old_client(server, "client-v1");
  old_client.mediator.route_remote<v1::Quote>();
  new_service.mediator.handle<v2::Quote>([](const v2::Quote& q) { return v2::Price{100 * q.quantity, "USD"}; });
  auto served = new_service.mediator.serve<v2::Quote>("quotes").value();
  // An old client's request lacks `quantity`: the new handler sees 1; the
  // reply's currency is unknown to the old client.
  auto o = old_client.mediator.query(v1::Quote{"A"});
  REQUIRE_MESSAGE(o, (o ? "" : o.error().message));
  CHECK(o->cents == 100);
}

TEST_CASE("a field made required is enforced: version-1 events lacking it are dead-lettered, not handled") {
  catga::test::NatsServer server;
  Service producer(server, "producer-v1");
  Service consumer(server, "consumer-v3");
  std::atomic<int> handled{0};
  auto sub = consumer.mediator.subscribe<v3::OrderPlaced>(nt::group("billing"),
                                                         [&](const v3::OrderPlaced&) { ++handled; })
                 .value();
  REQUIRE(producer.mediator.publish(v1::OrderPlaced{"o-1", 100}));
  REQUIRE(wait_for([&] { return dead_lettered(*consumer.transport) == 1; }, 60s));
  CHECK(handled.load() == 0);
}
