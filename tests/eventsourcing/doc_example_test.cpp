// The example quoted by docs/event-sourcing.md (regions marked
// [snippet:...] are copied there verbatim and checked by
// scripts/lib/check_snippets.sh). It runs as a test, so the doc cannot rot.
#include <doctest/doctest.h>
#include <sqlite3.h>

#include <filesystem>

#include "catga/eventsourcing/eventsourcing.hpp"
#include "catga/mediator.hpp"
#include "catga/nats/key_value.hpp"
#include "catga/pipeline/retry.hpp"
#include "es_test_support.hpp"
#include "wait_for.hpp"

namespace shop {

// [snippet:es-aggregate]
struct OrderPlaced {
  std::string order_id;
  std::string customer;
  double total = 0;
};
CATGA_EVENT(OrderPlaced, order_id, customer, total)

struct OrderCancelled {
  std::string order_id;
  std::string reason;
};
CATGA_EVENT(OrderCancelled, order_id, reason)

struct Order : catga::eventsourcing::Aggregate<Order, OrderPlaced, OrderCancelled> {
  static constexpr std::string_view kType = "Order";  // stream catga.es.Order.<id>
  std::string status = "new";
  double total = 0;

  // State changes only here, for new and replayed events alike.
  void apply(const OrderPlaced& e) {
    status = "placed";
    total = e.total;
  }
  void apply(const OrderCancelled&) { status = "cancelled"; }

  // Decisions check the state and raise events.
  catga::Status place(const std::string& customer, double amount) {
    if (status != "new") return catga::make_error("invalid_state", "order is " + status);
    raise(OrderPlaced{id(), customer, amount});
    return {};
  }
  catga::Status cancel(const std::string& reason) {
    if (status != "placed") return catga::make_error("invalid_state", "order is " + status);
    raise(OrderCancelled{id(), reason});
    return {};
  }

  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Order, status, total)  // for snapshots
};
// [/snippet:es-aggregate]

struct CancelOrder {
  std::string order_id;
  std::string reason;
};
CATGA_COMMAND(CancelOrder, void, order_id, reason)

}  // namespace shop

using namespace catga::eventsourcing;

TEST_CASE("the documented example: aggregate, command handler with retry, projection") {
  catga::test::NatsServer server;
  catga::nats::NatsOptions nats_options;
  nats_options.servers = {server.url()};
  const auto dir = std::filesystem::temp_directory_path() / ("catga-es-doc-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string db_path = (dir / "orders.db").string();

  // [snippet:es-setup]
  auto conn = catga::nats::Connection::connect(nats_options).value();
  auto store = EventStore::create(conn).value();  // stream CATGA_ES
  auto snapshots = catga::nats::KvBucket::open(conn, {.bucket = "order_snapshots"}).value();
  Repository<shop::Order> orders(store, snapshots, {.snapshot_every = 100});
  // [/snippet:es-setup]

  REQUIRE(orders.execute("A-1", [](shop::Order& o) { return o.place("alice", 30.0); }));

  // [snippet:es-command]
  catga::Mediator mediator;
  // A conflict (someone appended since our load) is retryable: the retry
  // behavior runs the handler again, which reloads and decides again.
  mediator.use(std::make_shared<catga::RetryBehavior>(catga::RetryOptions{.max_attempts = 5}));
  mediator.handle<shop::CancelOrder>([&](const shop::CancelOrder& c) -> catga::Status {
    auto r = orders.execute(c.order_id, [&](shop::Order& o) { return o.cancel(c.reason); },
                            {.actor = "support"});
    if (!r) return std::move(r).error();
    return {};
  });
  // [/snippet:es-command]

  // [snippet:es-projection]
  ProjectionHandlers handlers;
  handlers.schema = [](sqlite3* db) -> catga::Status {
    if (sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, status TEXT, total REAL)",
                     nullptr, nullptr, nullptr) != SQLITE_OK) {
      return catga::make_error("sqlite", sqlite3_errmsg(db), true);
    }
    return {};
  };
  handlers.apply = [](sqlite3* db, const Commit& commit) -> catga::Status {
    for (const auto& e : commit.events) {
      sqlite3_stmt* st = nullptr;
      if (e.type == "OrderPlaced") {
        auto placed = e.as<shop::OrderPlaced>();
        if (!placed) return std::move(placed).error();
        sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO orders VALUES (?1, 'placed', ?2)", -1, &st, nullptr);
        sqlite3_bind_double(st, 2, placed->total);
      } else if (e.type == "OrderCancelled") {
        sqlite3_prepare_v2(db, "UPDATE orders SET status = 'cancelled' WHERE id = ?1", -1, &st, nullptr);
      } else {
        continue;
      }
      sqlite3_bind_text(st, 1, commit.stream.id.c_str(), -1, SQLITE_TRANSIENT);
      const int rc = sqlite3_step(st);
      sqlite3_finalize(st);
      if (rc != SQLITE_DONE) return catga::make_error("sqlite", sqlite3_errmsg(db), true);
    }
    return {};  // the checkpoint is written in the same transaction by the projection
  };
  handlers.reset = [](sqlite3* db) -> catga::Status {
    sqlite3_exec(db, "DELETE FROM orders", nullptr, nullptr, nullptr);
    return {};
  };
  auto projection = SqliteProjection::start(
      store, {.name = "orders", .database = db_path, .filter = "catga.es.Order.>"}, handlers).value();
  // [/snippet:es-projection]

  REQUIRE(mediator.send(shop::CancelOrder{"A-1", "customer asked"}));
  auto order = orders.load("A-1").value();
  CHECK(order.status == "cancelled");
  CHECK(order.version() == 2);
  // The history says who did what.
  auto history = store->read({"Order", "A-1"}).value();
  REQUIRE(history.size() == 2);
  CHECK(history[1].events.at(0).actor == "support");
  CHECK(history[1].events.at(0).type == "OrderCancelled");
  // Cancelling twice is refused by the aggregate, not retried.
  auto again = mediator.send(shop::CancelOrder{"A-1", "again"});
  REQUIRE_FALSE(again);
  CHECK(again.error().code == "invalid_state");

  const auto last = store->last({"Order", "A-1"}).value().sequence;
  REQUIRE(catga::test::wait_for([&] { return projection->checkpoint() == last; }, std::chrono::seconds(60)));
  projection.reset();
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(db_path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT status, total FROM orders WHERE id = 'A-1'", -1, &st, nullptr);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))) == "cancelled");
  CHECK(sqlite3_column_double(st, 1) == doctest::Approx(30.0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  std::filesystem::remove_all(dir);
}
