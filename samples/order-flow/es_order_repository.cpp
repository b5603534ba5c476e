#include "es_order_repository.hpp"

#include <sqlite3.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <catga/eventsourcing/aggregate.hpp>
#include <catga/eventsourcing/projection.hpp>
#include <catga/eventsourcing/repository.hpp>
#include <array>
#include <chrono>
#include <filesystem>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace order_flow {
namespace {

namespace es = catga::eventsourcing;

// An order as an aggregate: its state is the OrderRecord the events fold into
// (apply_event), without history; `last` is the event applied last, for the
// history built while replaying.
struct OrderAggregate : es::Aggregate<OrderAggregate, OrderPlaced, OrderProcessing, InventoryReserved,
                                      InventoryReleased, PaymentCharged, PaymentFailed, OrderConfirmed,
                                      OrderCancelled, catga::SagaFailed> {
  static constexpr std::string_view kType = "Order";
  std::optional<OrderRecord> order;
  OrderEvent last;

  template <class E>
  void apply(const E& e) {
    if (!order) order.emplace();
    apply_event(*order, e);
    last = e;
  }
  void record(const OrderEvent& e) {
    std::visit([this](const auto& x) { this->raise(x); }, e);
  }
};

std::int64_t unix_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

catga::Status sql_error(sqlite3* db) { return catga::make_error("sqlite", sqlite3_errmsg(db), true); }

catga::Status exec_sql(sqlite3* db, const char* text) {
  char* err = nullptr;
  if (sqlite3_exec(db, text, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err != nullptr ? err : "?";
    sqlite3_free(err);
    return catga::make_error("sqlite", m, true);
  }
  return {};
}

// A prepared statement, finalized at scope exit.
struct Statement {
  sqlite3_stmt* st = nullptr;
  ~Statement() { sqlite3_finalize(st); }
};

// The read model: one row per order, its state (OrderRecord JSON without
// history) plus the columns the list filters and sorts on.
es::ProjectionHandlers order_list_model() {
  es::ProjectionHandlers h;
  h.schema = [](sqlite3* db) {
    return exec_sql(db,
                    "CREATE TABLE IF NOT EXISTS orders (order_id TEXT PRIMARY KEY, status TEXT NOT NULL, "
                    "created_ms INTEGER NOT NULL, doc TEXT NOT NULL);"
                    "CREATE INDEX IF NOT EXISTS orders_by_status ON orders (status, created_ms)");
  };
  h.apply = [](sqlite3* db, const es::Commit& c) -> catga::Status {
    OrderAggregate a;
    {
      Statement q;
      if (sqlite3_prepare_v2(db, "SELECT doc FROM orders WHERE order_id = ?1", -1, &q.st, nullptr) != SQLITE_OK) {
        return sql_error(db);
      }
      sqlite3_bind_text(q.st, 1, c.stream.id.c_str(), -1, SQLITE_TRANSIENT);
      const int rc = sqlite3_step(q.st);
      if (rc == SQLITE_ROW) {
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(q.st, 0));
        try {
          a.order = nlohmann::json::parse(text != nullptr ? text : "null").get<OrderRecord>();
        } catch (const std::exception& e) {
          spdlog::warn("order list: stored row of order={} does not decode ({}); rebuilt from this commit",
                       c.stream.id, e.what());
        }
      } else if (rc != SQLITE_DONE) {
        return sql_error(db);
      }
    }
    for (const auto& e : c.events) {
      // An event this build does not know must not stop the read model.
      if (auto s = a.replay(e); !s) spdlog::warn("order list: order={} {}", c.stream.id, s.error().message);
    }
    if (!a.order) return {};
    Statement up;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO orders (order_id, status, created_ms, doc) VALUES (?1, ?2, ?3, ?4) "
                           "ON CONFLICT(order_id) DO UPDATE SET status = excluded.status, "
                           "created_ms = excluded.created_ms, doc = excluded.doc",
                           -1, &up.st, nullptr) != SQLITE_OK) {
      return sql_error(db);
    }
    const std::string status(to_string(a.order->status));
    const std::string doc = nlohmann::json(*a.order).dump();
    sqlite3_bind_text(up.st, 1, c.stream.id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(up.st, 2, status.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(up.st, 3, a.order->created_ms);
    sqlite3_bind_text(up.st, 4, doc.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(up.st) != SQLITE_DONE) return sql_error(db);
    return {};
  };
  h.reset = [](sqlite3* db) { return exec_sql(db, "DELETE FROM orders"); };
  return h;
}

// A name token of [A-Za-z0-9_-] (consumer names, file names).
std::string token(std::string_view text) {
  std::string out;
  for (char ch : text) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                    ch == '_';
    out += ok ? ch : '_';
  }
  return out.empty() ? "_" : out;
}

// The state of the orders this repository saved last, by order id: the
// next decision on an order starts from it instead of a read of its stream.
// Bounded (least recently saved dropped first); thread-safe.
class LastSaved {
 public:
  std::optional<OrderAggregate> find(const std::string& id) {
    std::lock_guard lock(mu_);
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return std::nullopt;
    return it->second->second;
  }
  void put(const std::string& id, const OrderAggregate& a) {
    std::lock_guard lock(mu_);
    if (auto it = by_id_.find(id); it != by_id_.end()) {
      order_.erase(it->second);
      by_id_.erase(it);
    }
    insert_locked(id, a);
  }
  // Caches `a` unless something is cached for `id` already.
  void put_if_absent(const std::string& id, const OrderAggregate& a) {
    std::lock_guard lock(mu_);
    if (by_id_.count(id) == 0) insert_locked(id, a);
  }
  void erase(const std::string& id) {
    std::lock_guard lock(mu_);
    if (auto it = by_id_.find(id); it != by_id_.end()) {
      order_.erase(it->second);
      by_id_.erase(it);
    }
  }

 private:
  void insert_locked(const std::string& id, const OrderAggregate& a) {
    order_.emplace_front(id, a);
    by_id_.emplace(id, order_.begin());
    if (order_.size() > kCapacity) {
      by_id_.erase(order_.back().first);
      order_.pop_back();
    }
  }

  static constexpr std::size_t kCapacity = 4096;  // orders in flight, with room
  std::mutex mu_;
  std::list<std::pair<std::string, OrderAggregate>> order_;  // most recent first
  std::unordered_map<std::string, std::list<std::pair<std::string, OrderAggregate>>::iterator> by_id_;
};

class EsOrderRepository final : public OrderRepository {
 public:
  EsOrderRepository(std::shared_ptr<es::EventStore> store, std::string database, std::string temp_dir)
      : store_(std::move(store)), orders_(store_), database_(std::move(database)), temp_dir_(std::move(temp_dir)) {}

  ~EsOrderRepository() override { close(); }

  catga::Status start(const std::string& instance) {
    es::ProjectionOptions o;
    o.name = "order_list_" + token(instance);
    o.database = database_;
    o.filter = store_->options().prefix + ".es." + std::string(OrderAggregate::kType) + ".>";
    auto p = es::SqliteProjection::start(store_, o, order_list_model());
    if (!p) return std::move(p).error();
    projection_ = std::move(*p);
    return {};
  }

  catga::Result<std::optional<OrderRecord>> update(const std::string& order_id, const std::string& actor,
                                                   const OrderDecision& decide) override {
    // Two replicas may decide on the same order at once: the loser's append
    // is refused (`conflict`), it reloads and decides again on the new state.
    // The first try decides on the state this repository saved last (no
    // read of the stream: a reload costs a consumer's creation, a pull and
    // its deletion); the append expects that state's position, so a stream
    // that moved on is a `conflict` and the next try reloads. A decision to
    // change nothing is made again on a reloaded state: it is answered
    // without an append, which would check the position.
    constexpr int kAttempts = 50;
    // Decisions on one order in this process take turns: each starts from
    // the state the one before saved, instead of both deciding on the same
    // state and one of them paying a conflict and a reload.
    std::lock_guard turn(turns_[std::hash<std::string>{}(order_id) % turns_.size()]);
    bool reload = false;
    for (int attempt = 0; attempt < kAttempts; ++attempt) {
      std::optional<OrderAggregate> cached = reload ? std::nullopt : last_saved_.find(order_id);
      const bool from_cache = cached.has_value();
      auto a = from_cache ? catga::Result<OrderAggregate>(std::move(*cached)) : orders_.load(order_id);
      if (!a) return std::move(a).error();
      auto events = decide(a->order);
      if (!events) {
        if (from_cache) {
          reload = true;  // the refusal too is decided on the stream's state
          continue;
        }
        return std::move(events).error();
      }
      if (events->empty()) {
        if (from_cache) {
          reload = true;
          continue;
        }
        return std::move(a->order);
      }
      for (const auto& e : *events) a->record(e);
      auto saved = orders_.save(*a, {.actor = actor});
      if (saved) {
        last_saved_.put(order_id, *a);
        return std::move(a->order);
      }
      last_saved_.erase(order_id);
      reload = true;
      if (saved.error().code != catga::errc::conflict) return std::move(saved).error();
      if (attempt > 2) std::this_thread::sleep_for(std::chrono::milliseconds(attempt));
    }
    return catga::make_error(catga::errc::conflict, "order " + order_id + " kept changing; try again", true);
  }

  void expect_new(const std::string& order_id) override {
    OrderAggregate fresh;  // at version 0: its append expects an empty stream
    fresh.set_identity(order_id);
    last_saved_.put_if_absent(order_id, fresh);
  }

  catga::Result<std::optional<OrderRecord>> find(std::string_view order_id) override {
    const es::StreamId stream{std::string(OrderAggregate::kType), std::string(order_id)};
    if (!stream.validate()) return std::optional<OrderRecord>();  // not an id we would have stored
    auto commits = store_->read(stream);
    if (!commits) return std::move(commits).error();
    OrderAggregate a;
    std::vector<HistoryEntry> history;
    for (const auto& c : *commits) {
      for (const auto& e : c.events) {
        if (auto s = a.replay(e); !s) return std::move(s).error();
        history.push_back(order_history_line(a.last, e.actor, unix_ms(e.time)));
      }
    }
    if (a.order) a.order->history = std::move(history);
    return std::move(a.order);
  }

  catga::Result<std::vector<OrderRecord>> list(std::optional<OrderStatus> status, std::size_t limit) override {
    // Read your writes: what was appended before this call is listed.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      auto lag = projection_->lag();
      if (lag && *lag == 0) break;
      if (std::chrono::steady_clock::now() > deadline) break;  // list what we have
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::lock_guard lock(read_mutex_);
    if (reader_ == nullptr &&
        sqlite3_open_v2(database_.c_str(), &reader_, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, nullptr) != SQLITE_OK) {
      auto e = sql_error(reader_);
      sqlite3_close(reader_);
      reader_ = nullptr;
      return std::move(e).error();
    }
    sqlite3_busy_timeout(reader_, 5000);
    Statement q;
    const char* sql = status ? "SELECT doc FROM orders WHERE status = ?1 ORDER BY created_ms, order_id LIMIT ?2"
                             : "SELECT doc FROM orders ORDER BY created_ms, order_id LIMIT ?2";
    if (sqlite3_prepare_v2(reader_, sql, -1, &q.st, nullptr) != SQLITE_OK) return sql_error(reader_).error();
    const std::string wanted = status ? std::string(to_string(*status)) : std::string();
    if (status) sqlite3_bind_text(q.st, 1, wanted.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q.st, 2, static_cast<sqlite3_int64>(std::min<std::size_t>(limit, 1u << 30)));
    std::vector<OrderRecord> out;
    int rc = 0;
    while ((rc = sqlite3_step(q.st)) == SQLITE_ROW) {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(q.st, 0));
      try {
        out.push_back(nlohmann::json::parse(text != nullptr ? text : "null").get<OrderRecord>());
      } catch (const std::exception& e) {
        return catga::make_error(catga::errc::malformed, std::string("listed order: ") + e.what());
      }
    }
    if (rc != SQLITE_DONE) return sql_error(reader_).error();
    return out;
  }

  std::map<std::string, double> read_model_counters() override {
    if (!projection_) return {};
    const auto h = projection_->health();
    std::lock_guard lock(read_mutex_);
    if (!h.last_error.empty() && h.last_error != last_reported_error_) {
      spdlog::warn("order list: {}", h.last_error);
      last_reported_error_ = h.last_error;
    }
    return {{"applied", static_cast<double>(h.applied)},
            {"checkpoint", static_cast<double>(h.checkpoint)},
            {"dead_lettered", static_cast<double>(h.dead_lettered)},
            {"ignored", static_cast<double>(h.ignored)},
            {"repositioned", static_cast<double>(h.repositioned)}};
  }

  void close() override {
    if (projection_) projection_->stop();
    std::lock_guard lock(read_mutex_);
    if (reader_ != nullptr) sqlite3_close(reader_);
    reader_ = nullptr;
    if (!temp_dir_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(temp_dir_, ignored);
      temp_dir_.clear();
    }
  }

 private:
  std::shared_ptr<es::EventStore> store_;
  es::Repository<OrderAggregate> orders_;
  std::string database_;
  std::string temp_dir_;
  std::unique_ptr<es::SqliteProjection> projection_;
  LastSaved last_saved_;
  std::array<std::mutex, 256> turns_;  // by hash of the order id (update())
  std::mutex read_mutex_;
  sqlite3* reader_ = nullptr;
  std::string last_reported_error_;  // scrapes log a new read-model error once
};

}  // namespace

catga::Result<std::shared_ptr<OrderRepository>> event_sourced_orders(std::shared_ptr<catga::nats::Connection> connection,
                                                                     EsOrderSettings settings) {
  es::EventStoreOptions o;
  o.stream = settings.stream;
  auto store = es::EventStore::create(std::move(connection), o);
  if (!store) return std::move(store).error();
  std::string dir = settings.data_dir;
  std::string temp_dir;
  if (dir.empty()) {
    std::string pattern = (std::filesystem::temp_directory_path() / "order-flow-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      return catga::make_error(catga::errc::unavailable, "cannot create a temporary directory for the order list");
    }
    dir = temp_dir = pattern;
  } else {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return catga::make_error(catga::errc::unavailable, "cannot create " + dir + ": " + ec.message());
  }
  const std::string database = (std::filesystem::path(dir) / ("orders-" + token(settings.instance) + ".db")).string();
  auto repo = std::make_shared<EsOrderRepository>(std::move(*store), database, temp_dir);
  if (auto s = repo->start(settings.instance); !s) return s.error();
  spdlog::info("orders: event-sourced, list from {}", database);
  return std::shared_ptr<OrderRepository>(std::move(repo));
}

}  // namespace order_flow
