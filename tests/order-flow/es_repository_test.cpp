// The event-sourced order repository (samples/order-flow/es_order_repository.cpp)
// against a real nats-server: an update decides on the state this
// repository saved last without reading the stream again (issue 26: a read
// costs an ephemeral consumer's creation, a pull and its deletion), yet
// never appends to, nor answers from, a state another writer moved past.
#include <doctest/doctest.h>
#include <nats/nats.h>

#include <atomic>
#include <thread>
#include <vector>
#include <catga/nats/connection.hpp>

#include "es_order_repository.hpp"
#include "nats_server.hpp"

using namespace order_flow;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<catga::nats::Connection> connect(const catga::test::NatsServer& server) {
  catga::nats::NatsOptions o;
  o.servers = {server.url()};
  o.name = "es-repository-test";
  auto c = catga::nats::Connection::connect(o).value();
  c->wait_connected(10s).value();
  return c;
}

std::shared_ptr<OrderRepository> repository(const std::shared_ptr<catga::nats::Connection>& c, std::string instance) {
  EsOrderSettings s;
  s.instance = std::move(instance);
  return event_sourced_orders(c, s).value();
}

// Counts the JetStream API requests that create a consumer (an event store
// read creates one ephemeral consumer per read), seen on a connection of
// its own.
class ConsumerCreations {
 public:
  explicit ConsumerCreations(const std::string& url) {
    REQUIRE(natsConnection_ConnectTo(&nc_, url.c_str()) == NATS_OK);
    REQUIRE(natsConnection_Subscribe(&sub_, nc_, "$JS.API.CONSUMER.CREATE.>", &on_msg, this) == NATS_OK);
    REQUIRE(natsConnection_Flush(nc_) == NATS_OK);
  }
  ~ConsumerCreations() {
    natsSubscription_Destroy(sub_);
    natsConnection_Destroy(nc_);
  }
  // After a flush of the connection that made the requests, every one of
  // them has reached the server; a flush of ours then has them delivered.
  int count() {
    natsConnection_Flush(nc_);
    return n_.load();
  }

 private:
  static void on_msg(natsConnection*, natsSubscription*, natsMsg* m, void* self) {
    natsMsg_Destroy(m);
    static_cast<ConsumerCreations*>(self)->n_++;
  }
  natsConnection* nc_ = nullptr;
  natsSubscription* sub_ = nullptr;
  std::atomic<int> n_{0};
};

OrderPlaced placed(const std::string& id) { return OrderPlaced{id, "c1", {{"A-1", 1}}, 10.0, 1}; }

}  // namespace

TEST_CASE("an order this repository saved is decided on again without reading its stream") {
  catga::test::NatsServer server;
  auto conn = connect(server);
  auto repo = repository(conn, "order-1");
  ConsumerCreations creations(server.url());

  REQUIRE(repo->update("ord-1", "customer:c1", [](const std::optional<OrderRecord>& o) -> catga::Result<std::vector<OrderEvent>> {
    CHECK(!o);
    return std::vector<OrderEvent>{placed("ord-1")};
  }));
  const int after_create = creations.count();
  CHECK(after_create >= 1);  // the new order's stream was read once (it was empty)

  auto processing = repo->update("ord-1", "saga:order-1",
                                 [](const std::optional<OrderRecord>& o) -> catga::Result<std::vector<OrderEvent>> {
                                   REQUIRE(o);
                                   CHECK(o->status == OrderStatus::pending);
                                   return std::vector<OrderEvent>{OrderProcessing{"ord-1", "order-1", 2}};
                                 });
  REQUIRE(processing);
  CHECK((*processing)->status == OrderStatus::processing);
  CHECK(creations.count() == after_create);  // no read: decided on the state saved last

  // What was appended is what a reader of the stream finds.
  auto found = repo->find("ord-1").value();
  REQUIRE(found);
  CHECK(found->status == OrderStatus::processing);
  CHECK(found->history.size() == 2);
}

TEST_CASE("a state another replica moved past is reloaded: never appended to, never answered from") {
  catga::test::NatsServer server;
  auto conn = connect(server);
  auto a = repository(conn, "order-a");
  auto b = repository(conn, "order-b");

  REQUIRE(a->update("ord-2", "customer:c1", [](const std::optional<OrderRecord>&) -> catga::Result<std::vector<OrderEvent>> {
    return std::vector<OrderEvent>{placed("ord-2")};
  }));
  // Replica b moves the order on; a's last saved state (pending) is now old.
  REQUIRE(b->update("ord-2", "saga:order-b", [](const std::optional<OrderRecord>& o) -> catga::Result<std::vector<OrderEvent>> {
    REQUIRE(o);
    return std::vector<OrderEvent>{OrderProcessing{"ord-2", "order-b", 2}};
  }));

  SUBCASE("a decision to append: the append is refused and it is decided again on the stream's state") {
    std::vector<OrderStatus> seen;
    auto r = a->update("ord-2", "customer:c1", [&](const std::optional<OrderRecord>& o) -> catga::Result<std::vector<OrderEvent>> {
      REQUIRE(o);
      seen.push_back(o->status);
      return std::vector<OrderEvent>{OrderCancelled{"ord-2", "c1", "changed my mind", "customer:c1",
                                                    std::string(to_string(o->status)), "order-a", 3}};
    });
    REQUIRE(r);
    REQUIRE(!seen.empty());
    CHECK(seen.back() == OrderStatus::processing);
    CHECK((*r)->cancelled_from == "processing");
    auto found = b->find("ord-2").value();
    REQUIRE(found);
    CHECK(found->history.size() == 3);  // placed, processing, cancelled: nothing lost, nothing twice
    CHECK(found->cancelled_from == "processing");
  }

  SUBCASE("a decision to change nothing is taken on the stream's state, not on the saved one") {
    std::vector<OrderStatus> seen;
    auto r = a->update("ord-2", "saga:order-a", [&](const std::optional<OrderRecord>& o) -> catga::Result<std::vector<OrderEvent>> {
      REQUIRE(o);
      seen.push_back(o->status);
      return std::vector<OrderEvent>{};
    });
    REQUIRE(r);
    REQUIRE(*r);
    CHECK((*r)->status == OrderStatus::processing);
    REQUIRE(!seen.empty());
    CHECK(seen.back() == OrderStatus::processing);
  }

  SUBCASE("a refusal too is decided on the stream's state") {
    auto r = a->update("ord-2", "saga:order-a", [&](const std::optional<OrderRecord>& o) -> catga::Result<std::vector<OrderEvent>> {
      REQUIRE(o);
      if (o->status == OrderStatus::pending) return catga::make_error("still_pending", "not yet processing");
      return std::vector<OrderEvent>{};
    });
    CHECK(r);
  }
}

// Issue 26: the order service makes up a new order's id, starts its saga and
// records OrderPlaced, while the saga's first step records OrderProcessing.
// Each read the stream first (it was empty), and one of them then lost the
// race to append and read it again.
TEST_CASE("a new order id announced with expect_new is recorded without reading its stream") {
  catga::test::NatsServer server;
  auto conn = connect(server);
  auto a = repository(conn, "order-a");
  ConsumerCreations creations(server.url());

  a->expect_new("ord-3");
  REQUIRE(a->update("ord-3", "customer:c1", [](const std::optional<OrderRecord>& o) -> catga::Result<std::vector<OrderEvent>> {
    CHECK(!o);
    return std::vector<OrderEvent>{placed("ord-3")};
  }));
  CHECK(creations.count() == 0);
  a->expect_new("ord-3");  // late: what was saved stays
  auto again = a->update("ord-3", "saga:order-a", [](const std::optional<OrderRecord>& o) -> catga::Result<std::vector<OrderEvent>> {
    REQUIRE(o);
    return std::vector<OrderEvent>{OrderProcessing{"ord-3", "order-a", 2}};
  });
  REQUIRE(again);
  CHECK((*again)->status == OrderStatus::processing);
  CHECK(creations.count() == 0);

  SUBCASE("a wrong hint costs a conflict and a read, never a write") {
    auto b = repository(conn, "order-b");
    REQUIRE(b->update("ord-4", "customer:c1", [](const std::optional<OrderRecord>&) -> catga::Result<std::vector<OrderEvent>> {
      return std::vector<OrderEvent>{placed("ord-4")};
    }));
    a->expect_new("ord-4");  // wrong: b recorded it
    std::vector<bool> seen;  // whether the order existed, per decision
    auto r = a->update("ord-4", "saga:order-a", [&](const std::optional<OrderRecord>& o) -> catga::Result<std::vector<OrderEvent>> {
      seen.push_back(o.has_value());
      if (!o) return std::vector<OrderEvent>{placed("ord-4"), OrderProcessing{"ord-4", "order-a", 2}};
      return std::vector<OrderEvent>{OrderProcessing{"ord-4", "order-a", 2}};
    });
    REQUIRE(r);
    CHECK(seen == std::vector<bool>{false, true});  // refused on the empty state, decided again on b's
    auto found = b->find("ord-4").value();
    REQUIRE(found);
    CHECK(found->history.size() == 2);  // placed once, then processing
  }
}

TEST_CASE("decisions on one order from many threads of one process take turns: none reads the stream again") {
  catga::test::NatsServer server;
  auto conn = connect(server);
  auto repo = repository(conn, "order-1");
  REQUIRE(repo->update("ord-5", "customer:c1", [](const std::optional<OrderRecord>&) -> catga::Result<std::vector<OrderEvent>> {
    return std::vector<OrderEvent>{placed("ord-5")};
  }));
  ConsumerCreations creations(server.url());
  constexpr int kThreads = 8;
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto r = repo->update("ord-5", "saga:order-1", [&](const std::optional<OrderRecord>& o) -> catga::Result<std::vector<OrderEvent>> {
        if (!o) return catga::make_error("lost", "no order");
        return std::vector<OrderEvent>{OrderProcessing{"ord-5", "t" + std::to_string(i), 10 + i}};
      });
      if (!r) ++failed;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failed.load() == 0);
  // Without turns the threads decide on the same saved state; all but one
  // append is refused and read the stream again.
  CHECK(creations.count() == 0);
  auto found = repo->find("ord-5").value();
  REQUIRE(found);
  CHECK(found->history.size() == 1 + kThreads);
}
