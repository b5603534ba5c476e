// Contracts that evolve during a rolling upgrade (issue 22): producers and
// consumers built with different versions of a message, over JetStream with
// the library's default options. Version 2 adds fields with defaults; a
// version-1 body lacks them, a version-2 body has fields version 1 does not
// know. Neither is dead-lettered; what each side reads is documented in
// docs/wire-format.md ("Evolving a message"). A field declared required
// (CATGA_REQUIRED) is the exception: a body without it is dead-lettered.
// A renamed field needs a version (CATGA_VERSION) and an upcaster on the
// consumers (Mediator::upcast): the "r1"/"r2" cases below, both ways.
#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "nats_server.hpp"
#include "stream_reader.hpp"
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

// A rename (issue 22): version 2 of ItemReserved and of the Reserve command
// calls "qty" "quantity" and adds "warehouse". It declares CATGA_VERSION 2, so
// its producers stamp Catga-Message-Version: 2, and its consumers register
// an upcaster from version 1 (bodies without the header). The upcaster reads
// "qty" with at(): were it run on a version-2 body, the message would be
// malformed.
namespace r1 {
struct ItemReserved {
  std::string order_id;
  int qty = 0;
};
CATGA_EVENT(ItemReserved, order_id, qty)
struct Reservation {
  std::string sku;
  int reserved = 0;
};
CATGA_STRUCT(Reservation, sku, reserved)
struct Reserve {
  std::string sku;
  int qty = 0;
};
CATGA_COMMAND(Reserve, Reservation, sku, qty)
}  // namespace r1

namespace r2 {
struct ItemReserved {
  std::string order_id;
  int quantity = 0;                // "qty" in version 1
  std::string warehouse = "main";  // added in version 2
  CATGA_REQUIRED(order_id)
};
CATGA_EVENT(ItemReserved, order_id, quantity, warehouse)
CATGA_VERSION(ItemReserved, 2)
using r1::Reservation;
struct Reserve {
  std::string sku;
  int quantity = 0;  // "qty" in version 1
};
CATGA_COMMAND(Reserve, Reservation, sku, quantity)
CATGA_VERSION(Reserve, 2)

// Version 1 → 2: "qty" becomes "quantity" ("warehouse" keeps its default).
inline nlohmann::json rename_qty(nlohmann::json body) {
  const int qty = body.at("qty").get<int>();
  if (qty < 0) throw std::invalid_argument("qty " + std::to_string(qty) + " is negative");
  body["quantity"] = qty;
  body.erase("qty");
  return body;
}
inline void add_upcasters(catga::Mediator& m) {
  m.upcast<ItemReserved>(1, rename_qty);
  m.upcast<Reserve>(1, rename_qty);
}
}  // namespace r2

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

TEST_CASE("rolling upgrade with a renamed field: version-1 and version-2 producers, a version-2 group with the upcaster") {
  catga::test::NatsServer server;
  Service producer_v1(server, "producer-v1");
  Service producer_v2(server, "producer-v2");
  // Two members of one group, both upgraded (the upcaster ships with version 2).
  Service member_a(server, "stock-v2-a");
  Service member_b(server, "stock-v2-b");
  Received<r2::ItemReserved> got;
  std::vector<catga::Subscription> subs;
  for (Service* member : {&member_a, &member_b}) {
    r2::add_upcasters(member->mediator);
    subs.push_back(member->mediator
                       .subscribe<r2::ItemReserved>(nt::group("stock"),
                                                    [&](const r2::ItemReserved& e) { got.add(e); })
                       .value());
  }
  for (int i = 0; i < kEvents; ++i) {
    REQUIRE(producer_v1.mediator.publish(r1::ItemReserved{"v1-" + std::to_string(i), i + 1}));
    REQUIRE(producer_v2.mediator.publish(r2::ItemReserved{"v2-" + std::to_string(i), 100 + i, "north"}));
  }
  REQUIRE(wait_for([&] { return got.count.load() == 2 * kEvents; }, 60s));
  {
    std::lock_guard lock(got.mu);
    std::map<std::string, r2::ItemReserved> by_id;
    for (const auto& e : got.events) CHECK(by_id.emplace(e.order_id, e).second);  // each handled once
    REQUIRE(by_id.size() == 2 * kEvents);
    for (int i = 0; i < kEvents; ++i) {
      const auto& old_body = by_id["v1-" + std::to_string(i)];
      CHECK(old_body.quantity == i + 1);  // renamed by the upcaster
      CHECK(old_body.warehouse == "main");
      const auto& new_body = by_id["v2-" + std::to_string(i)];
      CHECK(new_body.quantity == 100 + i);  // version 2 on the wire: not upcast
      CHECK(new_body.warehouse == "north");
    }
  }
  CHECK(dead_lettered(*member_a.transport) == 0);
  CHECK(dead_lettered(*member_b.transport) == 0);

  // On the wire: version-2 events say so, version-1 events carry no version.
  catga::test::RawNats raw(server.url());
  int v1_stored = 0, v2_stored = 0;
  for (const auto& m : nt::read_stream(raw, "CATGA_EVENTS")) {
    if (m.subject != "catga.evt.ItemReserved") continue;
    if (m.body.find("\"qty\"") != std::string::npos) {
      CHECK_FALSE(m.has("Catga-Message-Version"));
      ++v1_stored;
    } else {
      CHECK(m.header("Catga-Message-Version") == "2");
      ++v2_stored;
    }
  }
  CHECK(v1_stored == kEvents);
  CHECK(v2_stored == kEvents);

  // Requests: a version-1 client's command is upcast by the version-2
  // service; a version-2 client's is not.
  Service service(server, "stock-service-v2");
  r2::add_upcasters(service.mediator);
  service.mediator.handle<r2::Reserve>([](const r2::Reserve& r) { return r2::Reservation{r.sku, r.quantity}; });
  auto served = service.mediator.serve<r2::Reserve>("stock").value();
  producer_v1.mediator.route_remote<r1::Reserve>();
  producer_v2.mediator.route_remote<r2::Reserve>();
  auto from_v1 = producer_v1.mediator.send(r1::Reserve{"A", 3});
  REQUIRE_MESSAGE(from_v1, (from_v1 ? "" : from_v1.error().message));
  CHECK(from_v1->sku == "A");
  CHECK(from_v1->reserved == 3);
  auto from_v2 = producer_v2.mediator.send(r2::Reserve{"B", 4});
  REQUIRE_MESSAGE(from_v2, (from_v2 ? "" : from_v2.error().message));
  CHECK(from_v2->reserved == 4);
}

TEST_CASE("rolling upgrade with a renamed field, the reverse: a version-1 consumer reads the old name's default") {
  catga::test::NatsServer server;
  Service producer(server, "producer-v2");
  Service consumer(server, "stock-v1");
  Received<r1::ItemReserved> got;
  auto sub = consumer.mediator.subscribe<r1::ItemReserved>(nt::group("stock"),
                                                          [&](const r1::ItemReserved& e) { got.add(e); })
                 .value();
  for (int i = 0; i < kEvents; ++i) {
    REQUIRE(producer.mediator.publish(r2::ItemReserved{"v2-" + std::to_string(i), 100 + i, "north"}));
  }
  REQUIRE(wait_for([&] { return got.count.load() == kEvents; }, 60s));
  {
    std::lock_guard lock(got.mu);
    for (const auto& e : got.events) {
      CHECK(e.order_id.rfind("v2-", 0) == 0);
      CHECK(e.qty == 0);  // documented: "quantity" is unknown to version 1, "qty" keeps its default
    }
  }
  CHECK(dead_lettered(*consumer.transport) == 0);

  Service service(server, "stock-service-v1");
  service.mediator.handle<r1::Reserve>([](const r1::Reserve& r) { return r1::Reservation{r.sku, r.qty}; });
  auto served = service.mediator.serve<r1::Reserve>("stock").value();
  producer.mediator.route_remote<r2::Reserve>();
  auto reply = producer.mediator.send(r2::Reserve{"A", 3});
  REQUIRE_MESSAGE(reply, (reply ? "" : reply.error().message));
  CHECK(reply->sku == "A");
  CHECK(reply->reserved == 0);  // the version-1 handler saw qty's default
}

TEST_CASE("an upcaster that throws: the event is dead-lettered as malformed, the request answered with the error") {
  catga::test::NatsServer server;
  Service producer(server, "producer-v1");
  Service consumer(server, "stock-v2");
  r2::add_upcasters(consumer.mediator);
  std::atomic<int> handled{0};
  auto sub = consumer.mediator.subscribe<r2::ItemReserved>(nt::group("stock"),
                                                          [&](const r2::ItemReserved&) { ++handled; })
                 .value();
  REQUIRE(producer.mediator.publish(r1::ItemReserved{"bad", -1}));
  REQUIRE(producer.mediator.publish(r1::ItemReserved{"good", 1}));
  REQUIRE(wait_for([&] { return dead_lettered(*consumer.transport) == 1 && handled.load() == 1; }, 60s));
  catga::test::RawNats raw(server.url());
  const auto dead = nt::read_stream(raw, "CATGA_DLQ");
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].header("Catga-Error-Code") == "malformed");
  CHECK(dead[0].header("Catga-Error").find("upcasting 'ItemReserved' from version 1 failed: qty -1 is negative") !=
        std::string::npos);

  consumer.mediator.handle<r2::Reserve>([](const r2::Reserve& r) { return r2::Reservation{r.sku, r.quantity}; });
  auto served = consumer.mediator.serve<r2::Reserve>("stock").value();
  producer.mediator.route_remote<r1::Reserve>();
  auto reply = producer.mediator.send(r1::Reserve{"A", -2});
  REQUIRE_FALSE(reply);
  CHECK(reply.error().code == catga::errc::malformed);
  CHECK(reply.error().message.find("qty -2 is negative") != std::string::npos);
}
