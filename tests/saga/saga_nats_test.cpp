// The saga orchestrator against a real nats-server: saga state in a
// JetStream KV bucket (KvSagaStore over catga::nats::KvBucket), step commands
// sent by request/reply over JetStreamTransport to a "travel" service on its
// own connection (with an idempotency store in KV, as a real service has),
// lifecycle events on the events stream.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <catga/nats/connection.hpp>
#include <catga/nats/jetstream_transport.hpp>
#include <catga/nats/key_value.hpp>
#include <catga/nats/kv_idempotency_store.hpp>
#include <catga/pipeline/idempotency.hpp>
#include <catga/saga/events.hpp>
#include <catga/saga/kv_saga_store.hpp>
#include <catga/saga/orchestrator.hpp>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "bank_service.hpp"
#include "nats_server.hpp"
#include "wait_for.hpp"
#include "watched_key_value.hpp"

namespace saga_nats_test {

namespace cn = catga::nats;

struct Trip {
  std::string trip;
  std::string flight;
  std::string hotel;
  std::string car;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Trip, trip, flight, hotel, car)

struct BookFlight {
  std::string trip;
};
CATGA_COMMAND(BookFlight, std::string, trip)
struct CancelFlight {
  std::string trip;
  std::string flight;
  std::string reason;
};
CATGA_COMMAND(CancelFlight, void, trip, flight, reason)
struct BookHotel {
  std::string trip;
  std::string flight;
};
CATGA_COMMAND(BookHotel, std::string, trip, flight)
struct CancelHotel {
  std::string trip;
  std::string hotel;
};
CATGA_COMMAND(CancelHotel, void, trip, hotel)
struct RentCar {
  std::string trip;
};
CATGA_COMMAND(RentCar, std::string, trip)

constexpr auto kWait = std::chrono::seconds(60);

std::shared_ptr<cn::Connection> connect(const catga::test::NatsServer& server, std::string name) {
  cn::NatsOptions o;
  o.servers = {server.url()};
  o.name = std::move(name);
  auto conn = cn::Connection::connect(o).value();
  REQUIRE(conn->wait_connected(std::chrono::seconds(30)));
  return conn;
}

cn::JetStreamOptions js_options() {
  cn::JetStreamOptions o;
  o.events.storage = cn::StorageType::memory;
  o.dead_letters.storage = cn::StorageType::memory;
  o.consumer.fetch_expires = std::chrono::milliseconds(1000);
  o.request_timeout = std::chrono::seconds(30);
  return o;
}

// The remote "travel" service: handles the step commands (queue group
// "travel"), deduplicates them by message id in a KV idempotency store, and
// consumes the saga lifecycle events (group "audit").
class Agency {
 public:
  explicit Agency(const catga::test::NatsServer& server) : conn_(connect(server, "agency")) {
    transport_ = cn::JetStreamTransport::create(conn_, js_options()).value();
    mediator_.attach(*transport_);
    cn::KvIdempotencyOptions idem;
    idem.bucket = "agency_idempotency";
    idem.storage = cn::StorageType::memory;
    catga::IdempotencyOptions options;
    options.store = cn::KvIdempotencyStore::create(conn_, idem).value();
    options.remember_failures = true;
    mediator_.use(std::make_shared<catga::IdempotencyBehavior>(options));

    mediator_.handle<BookFlight>([this](const BookFlight& c) -> catga::Result<std::string> {
      record("BookFlight");
      return "F-" + c.trip;
    });
    mediator_.handle<CancelFlight>([this](const CancelFlight& c) -> catga::Status {
      record("CancelFlight:" + c.reason);
      return {};
    });
    mediator_.handle<BookHotel>([this](const BookHotel& c) -> catga::Result<std::string> {
      record("BookHotel");
      if (c.flight != "F-" + c.trip) return catga::make_error("bad_flight", "no flight data from step 1: " + c.flight);
      std::unique_lock lock(mutex_);
      ++hotel_entered_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return hotel_open_; });
      return "H-" + c.trip;
    });
    mediator_.handle<CancelHotel>([this](const CancelHotel& c) -> catga::Status {
      record("CancelHotel:" + c.hotel);
      return {};
    });
    mediator_.handle<RentCar>([this](const RentCar& c) -> catga::Result<std::string> {
      record("RentCar");
      if (fail_car) return catga::make_error("no_cars", "no cars left");
      return "C-" + c.trip;
    });
    subs_.push_back(mediator_.serve<BookFlight>("travel").value());
    subs_.push_back(mediator_.serve<CancelFlight>("travel").value());
    subs_.push_back(mediator_.serve<BookHotel>("travel").value());
    subs_.push_back(mediator_.serve<CancelHotel>("travel").value());
    subs_.push_back(mediator_.serve<RentCar>("travel").value());

    catga::SubscribeOptions audit;
    audit.group = "audit";
    subs_.push_back(mediator_
                        .subscribe<catga::SagaStarted>(audit,
                                                       [this](const catga::SagaStarted& e) {
                                                         note(e.saga_id, "started");
                                                         return catga::Status{};
                                                       })
                        .value());
    subs_.push_back(mediator_
                        .subscribe<catga::SagaCompleted>(audit,
                                                         [this](const catga::SagaCompleted& e) {
                                                           note(e.saga_id, "completed");
                                                           return catga::Status{};
                                                         })
                        .value());
    subs_.push_back(mediator_
                        .subscribe<catga::SagaCompensated>(audit,
                                                           [this](const catga::SagaCompensated& e) {
                                                             note(e.saga_id, "compensated");
                                                             return catga::Status{};
                                                           })
                        .value());
  }

  ~Agency() {
    open_hotel();
    subs_.clear();
    (void)transport_->stop(std::chrono::seconds(10));
  }

  // Handler calls so far, in order ("BookFlight", "CancelHotel:H-t", ...).
  std::vector<std::string> calls() {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  int count(const std::string& what) {
    std::lock_guard lock(mutex_);
    return static_cast<int>(std::count(calls_.begin(), calls_.end(), what));
  }
  // Lifecycle events seen for `saga` over JetStream.
  std::vector<std::string> lifecycle(const std::string& saga) {
    std::lock_guard lock(mutex_);
    return events_[saga];
  }

  // BookHotel waits until the hotel is open (a slow step).
  void close_hotel() {
    std::lock_guard lock(mutex_);
    hotel_open_ = false;
  }
  void open_hotel() {
    std::lock_guard lock(mutex_);
    hotel_open_ = true;
    cv_.notify_all();
  }
  int hotel_entered() {
    std::lock_guard lock(mutex_);
    return hotel_entered_;
  }

  std::atomic<bool> fail_car{false};

 private:
  void record(std::string what) {
    std::lock_guard lock(mutex_);
    calls_.push_back(std::move(what));
  }
  void note(const std::string& saga, std::string what) {
    std::lock_guard lock(mutex_);
    events_[saga].push_back(std::move(what));
  }

  std::shared_ptr<cn::Connection> conn_;
  std::unique_ptr<cn::JetStreamTransport> transport_;
  catga::Mediator mediator_;
  std::vector<catga::Subscription> subs_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::string> calls_;
  std::map<std::string, std::vector<std::string>> events_;
  bool hotel_open_ = true;
  int hotel_entered_ = 0;
};

// The orchestrating side (the "order service"): its own connection, the step
// commands routed to the travel service, saga state in the KV bucket
// "trip_sagas".
struct Office {
  explicit Office(const catga::test::NatsServer& server) : conn(connect(server, "office")) {
    transport = cn::JetStreamTransport::create(conn, js_options()).value();
    mediator.attach(*transport);
    mediator.route_remote<BookFlight>();
    mediator.route_remote<CancelFlight>();
    mediator.route_remote<BookHotel>();
    mediator.route_remote<CancelHotel>();
    mediator.route_remote<RentCar>();
    cn::KvBucketOptions o;
    o.bucket = "trip_sagas";
    o.storage = cn::StorageType::memory;
    bucket = cn::KvBucket::open(conn, o).value();
    store = std::make_shared<catga::KvSagaStore>(bucket);
  }
  ~Office() { (void)transport->stop(std::chrono::seconds(10)); }

  std::shared_ptr<cn::Connection> conn;
  std::unique_ptr<cn::JetStreamTransport> transport;
  catga::Mediator mediator;
  std::shared_ptr<cn::KvBucket> bucket;
  std::shared_ptr<catga::KvSagaStore> store;
};

catga::SagaDefinition<Trip> trip_saga() {
  return catga::SagaDefinition<Trip>("trip")
      .step<BookFlight>(
          "flight", [](const Trip& d) { return BookFlight{d.trip}; },
          [](Trip& d, const std::string& f) { d.flight = f; })
      .compensate<CancelFlight>([](const Trip& d, std::string_view why) {
        return CancelFlight{d.trip, d.flight, std::string(why)};
      })
      .timeout(std::chrono::seconds(30))
      .step<BookHotel>(
          "hotel",
          [](const Trip& d) {
            return BookHotel{d.trip, d.flight};
          },
          [](Trip& d, const std::string& h) { d.hotel = h; })
      .compensate<CancelHotel>([](const Trip& d) {
        return CancelHotel{d.trip, d.hotel};
      })
      .timeout(std::chrono::seconds(30))
      .step<RentCar>(
          "car", [](const Trip& d) { return RentCar{d.trip}; }, [](Trip& d, const std::string& c) { d.car = c; })
      .timeout(std::chrono::seconds(30))
      .attempts(1, std::chrono::milliseconds(10))
      .compensation_retries(3, std::chrono::milliseconds(10));
}

catga::SagaOptions options(std::string instance, std::chrono::milliseconds lease = std::chrono::seconds(30)) {
  catga::SagaOptions o;
  o.instance_id = std::move(instance);
  o.workers = 2;
  o.lease = lease;
  return o;
}

// One orchestrator's view of the store: counts the revision conflicts its
// writes meet, and can refuse a write as if the process died just before it.
class WatchedStore final : public catga::SagaStore {
 public:
  explicit WatchedStore(std::shared_ptr<catga::SagaStore> inner) : inner_(std::move(inner)) {}
  catga::Result<std::uint64_t> create(const catga::SagaRecord& r) override { return inner_->create(r); }
  catga::Result<catga::StoredSaga> load(std::string_view id) override { return inner_->load(id); }
  catga::Result<std::uint64_t> update(const catga::SagaRecord& r, std::uint64_t expected) override {
    if (die_before && die_before(r)) {
      dead = true;
      return catga::make_error(catga::errc::unavailable, "simulated crash", true);
    }
    auto rev = inner_->update(r, expected);
    if (!rev && rev.error().code == catga::errc::conflict) ++conflicts;
    return rev;
  }
  catga::Result<std::vector<catga::StoredSaga>> load_active() override { return inner_->load_active(); }
  catga::Result<std::vector<std::string>> list_all() override { return inner_->list_all(); }

  std::function<bool(const catga::SagaRecord&)> die_before;  // set before use
  std::atomic<bool> dead{false};
  std::atomic<int> conflicts{0};

 private:
  std::shared_ptr<catga::SagaStore> inner_;
};

int history_count(const catga::SagaRecord& r, const std::string& what) {
  int n = 0;
  for (const auto& h : r.history) n += h.what == what ? 1 : 0;
  return n;
}

}  // namespace saga_nats_test

using namespace saga_nats_test;
using V = std::vector<std::string>;

TEST_CASE("over NATS: a saga whose steps all succeed completes; state in KV, events on the stream") {
  catga::test::NatsServer server;
  Agency agency(server);
  Office office(server);
  auto saga = trip_saga();
  catga::SagaOrchestrator orch(office.mediator, office.store, options("pod-1"));
  orch.add(saga);

  REQUIRE(orch.start(saga, "trip-ok", Trip{"trip-ok", "", "", ""}));
  auto r = orch.wait("trip-ok", kWait);
  REQUIRE(r);
  CHECK(r->status == catga::SagaStatus::completed);
  const auto data = r->data.get<Trip>();
  CHECK(data.flight == "F-trip-ok");  // results of remote steps are kept in the saga's data
  CHECK(data.hotel == "H-trip-ok");
  CHECK(data.car == "C-trip-ok");
  CHECK(agency.calls() == V{"BookFlight", "BookHotel", "RentCar"});

  // The record in the bucket is the one the orchestrator reports, at the
  // bucket's revision.
  auto entry = office.bucket->get("trip-ok").value();
  REQUIRE(entry);
  auto stored = office.store->load("trip-ok").value();
  CHECK(stored.revision == entry->revision);
  CHECK(stored.record.status == catga::SagaStatus::completed);
  CHECK(history_count(stored.record, "completed") == 3);
  CHECK(office.store->list_active()->empty());

  // Lifecycle events went through JetStream to the audit consumer group.
  CHECK(catga::test::wait_for([&] { return agency.lifecycle("trip-ok") == V{"started", "completed"}; }, kWait));
}

TEST_CASE("over NATS: a failing last step compensates the completed steps in reverse order") {
  catga::test::NatsServer server;
  Agency agency(server);
  Office office(server);
  agency.fail_car = true;
  auto saga = trip_saga();
  catga::SagaOrchestrator orch(office.mediator, office.store, options("pod-1"));
  orch.add(saga);

  REQUIRE(orch.start(saga, "trip-no-car", Trip{"trip-no-car", "", "", ""}));
  auto r = orch.wait("trip-no-car", kWait);
  REQUIRE(r);
  CHECK(r->status == catga::SagaStatus::compensated);
  CHECK(r->error.find("no_cars") != std::string::npos);
  // The remote error code travelled back; compensations saw the data and the reason.
  const auto calls = agency.calls();
  REQUIRE(calls.size() == 5);
  CHECK(V(calls.begin(), calls.begin() + 3) == V{"BookFlight", "BookHotel", "RentCar"});
  CHECK(calls[3] == "CancelHotel:H-trip-no-car");
  CHECK(calls[4].rfind("CancelFlight:car: no_cars", 0) == 0);
  CHECK(history_count(*r, "compensated") == 2);
  CHECK(office.store->list_active()->empty());
  CHECK(catga::test::wait_for([&] { return agency.lifecycle("trip-no-car") == V{"started", "compensated"}; }, kWait));
}

TEST_CASE("over NATS: an orchestrator that dies mid-saga is resumed by another instance to a final state") {
  catga::test::NatsServer server;
  Agency agency(server);
  Office office(server);
  auto saga = trip_saga();

  SUBCASE("dies after step 1 was recorded: the other instance runs steps 2 and 3 only") {
    {
      catga::SagaOrchestrator a(office.mediator, office.store, options("pod-1", std::chrono::milliseconds(300)));
      a.add(saga);
      // The simulated crash: after step 0's completion is stored (with step
      // 1's send recorded, not yet made), pod-1 stops driving on the spot
      // and is destroyed without finishing.
      a.after_persist = [](const catga::SagaRecord& r) { return r.step != 1; };
      REQUIRE(a.start(saga, "trip-crash", Trip{"trip-crash", "", "", ""}));
      REQUIRE(catga::test::wait_for(
          [&] {
            auto s = office.store->load("trip-crash");
            return s && s->record.step == 1;
          },
          kWait));
    }
    auto left = office.store->load("trip-crash").value();
    CHECK(left.record.status == catga::SagaStatus::running);
    CHECK(left.record.owner == "pod-1");

    catga::SagaOrchestrator b(office.mediator, office.store, options("pod-2"));
    b.add(saga);
    // pod-1's lease runs out; then pod-2 may take the saga over.
    REQUIRE(catga::test::wait_for([&] { return b.recover().value_or(0) == 1; }, kWait));
    auto r = b.wait("trip-crash", kWait);
    REQUIRE(r);
    CHECK(r->status == catga::SagaStatus::completed);
    CHECK(r->owner == "pod-2");
    CHECK(r->data.get<Trip>().car == "C-trip-crash");
    CHECK(agency.calls() == V{"BookFlight", "BookHotel", "RentCar"});  // no step ran twice
  }

  SUBCASE("dies after step 2 was handled but before it was recorded: the same command id is resent, applied once") {
    {
      auto dying = std::make_shared<WatchedStore>(office.store);
      dying->die_before = [](const catga::SagaRecord& r) { return r.step == 2; };  // step 2's completion
      catga::SagaOrchestrator a(office.mediator, dying, options("pod-1", std::chrono::milliseconds(300)));
      a.add(saga);
      REQUIRE(a.start(saga, "trip-lost", Trip{"trip-lost", "", "", ""}));
      REQUIRE(catga::test::wait_for([&] { return dying->dead.load(); }, kWait));
    }
    auto left = office.store->load("trip-lost").value();
    CHECK(left.record.step == 1);  // as far as the store knows, BookHotel is still in flight
    CHECK(left.record.attempt == 1);
    CHECK(agency.count("BookHotel") == 1);

    catga::SagaOrchestrator b(office.mediator, office.store, options("pod-2"));
    b.add(saga);
    REQUIRE(catga::test::wait_for([&] { return b.recover().value_or(0) == 1; }, kWait));
    auto r = b.wait("trip-lost", kWait);
    REQUIRE(r);
    CHECK(r->status == catga::SagaStatus::completed);
    CHECK(r->owner == "pod-2");
    // pod-2 resent "trip-lost/s1/1"; the service answered it from its
    // idempotency store with the first outcome instead of booking again.
    CHECK(r->data.get<Trip>().hotel == "H-trip-lost");
    CHECK(agency.calls() == V{"BookFlight", "BookHotel", "RentCar"});
  }
}

TEST_CASE("over NATS: two orchestrators never both advance one saga (revision check on the KV bucket)") {
  catga::test::NatsServer server;
  Agency agency(server);
  Office office(server);
  auto saga = trip_saga();

  // pod-1 starts the saga; its BookHotel is held by the service.
  agency.close_hotel();
  auto a_store = std::make_shared<WatchedStore>(office.store);
  catga::SagaOrchestrator a(office.mediator, a_store, options("pod-1", std::chrono::milliseconds(300)));
  a.add(saga);
  REQUIRE(a.start(saga, "trip-race", Trip{"trip-race", "", "", ""}));
  REQUIRE(catga::test::wait_for([&] { return agency.hotel_entered() == 1; }, kWait));

  // Its lease runs out while the step is slow: pod-2 takes the saga over
  // (pod-1 is alive, just slow) and resends the same command.
  catga::SagaOrchestrator b(office.mediator, office.store, options("pod-2"));
  b.add(saga);
  REQUIRE(catga::test::wait_for([&] { return b.recover().value_or(0) == 1; }, kWait));
  REQUIRE(catga::test::wait_for(
      [&] {
        auto s = office.store->load("trip-race");
        return s && s->record.owner == "pod-2";
      },
      kWait));

  // Both now wait for the same BookHotel. When it answers, pod-1's write is
  // refused (the saga moved on to a revision pod-1 never read), so pod-1
  // stops driving and only pod-2 advances the saga.
  agency.open_hotel();
  auto r = b.wait("trip-race", kWait);
  REQUIRE(r);
  CHECK(r->status == catga::SagaStatus::completed);
  CHECK(r->owner == "pod-2");
  CHECK(catga::test::wait_for([&] { return a_store->conflicts.load() >= 1; }, kWait));
  CHECK(history_count(*r, "completed") == 3);  // each step recorded once
  CHECK(agency.count("BookHotel") == 1);       // and applied once
  CHECK(agency.count("RentCar") == 1);

  // A write at a stale revision is refused by the bucket itself.
  auto now = office.store->load("trip-race").value();
  CHECK(office.store->update(now.record, now.revision - 1).error().code == catga::errc::conflict);
  CHECK(office.store->update(now.record, now.revision).value() > now.revision);
}

TEST_CASE("over NATS: finished sagas leave the active index; recovery and counts read active sagas only") {
  catga::test::NatsServer server;
  Agency agency(server);
  Office office(server);
  auto saga = trip_saga();
  auto kv = std::make_shared<saga_test_support::WatchedKeyValue>(office.bucket);
  auto store = std::make_shared<catga::KvSagaStore>(kv);
  catga::SagaOrchestrator orch(office.mediator, store, options("pod-1"));
  orch.add(saga);

  constexpr int kFinished = 20;
  for (int i = 0; i < kFinished; ++i) {
    const std::string id = "trip-" + std::to_string(i);
    REQUIRE(orch.start(saga, id, Trip{id, "", "", ""}));
  }
  for (int i = 0; i < kFinished; ++i) {
    REQUIRE(orch.wait("trip-" + std::to_string(i), kWait)->status == catga::SagaStatus::completed);
  }
  // One saga that another, live instance drives.
  catga::SagaRecord live;
  live.id = "trip-live";
  live.type = "trip";
  live.data = Trip{"trip-live", "", "", ""};
  live.owner = "pod-2";
  live.created_ms = live.updated_ms = catga::unix_ms_now();
  live.lease_until_ms = live.created_ms + 3'600'000;
  REQUIRE(store->create(live));

  kv->record_reads = 0;
  CHECK(*store->list_active() == V{"trip-live"});
  CHECK(orch.recover().value() == 0);
  const auto counts = store->count_active().value();
  CHECK(counts.running == 1);
  CHECK(counts.compensating == 0);
  const auto all = store->count().value();  // what the sample's /metrics reports
  CHECK(all.running == 1);
  CHECK(all.completed == kFinished);  // from the totals in the index keys
  CHECK(all.compensated + all.compensation_failed == 0);
  CHECK(kv->record_reads.load() == 4);  // trip-live, once per call; no finished saga read

  // In the bucket: the records, the index's meta key and shards, no key per
  // finished saga (nor a delete marker of one).
  CHECK(store->list_all()->size() == kFinished + 1);
  const auto index_keys = office.bucket->keys("active.").value();
  CHECK(std::count(index_keys.begin(), index_keys.end(), "active.meta") == 1);
  CHECK(index_keys.size() <= 1 + 32);
}

namespace saga_nats_test {

// The crash case: a shop's saga holds stock (local), charges through the
// bank (the saga_bank_service process, SIGKILLed mid-charge) and ships
// (local).
struct Hold {
  std::string order;
};
CATGA_COMMAND(Hold, void, order)
struct Unhold {
  std::string order;
};
CATGA_COMMAND(Unhold, void, order)
struct Ship {
  std::string order;
};
CATGA_COMMAND(Ship, void, order)

struct ShopOrder {
  std::string order;
  int amount = 0;
  std::string payment;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ShopOrder, order, amount, payment)

catga::SagaDefinition<ShopOrder> shop_saga(std::chrono::milliseconds resolve_for) {
  return catga::SagaDefinition<ShopOrder>("shop")
      .step<Hold>("hold", [](const ShopOrder& d) { return Hold{d.order}; })
      .compensate<Unhold>([](const ShopOrder& d) { return Unhold{d.order}; })
      .step<saga_bank::Charge>(
          "charge", [](const ShopOrder& d) { return saga_bank::Charge{d.order, d.amount}; },
          [](ShopOrder& d, const std::string& payment) { d.payment = payment; })
      .compensate<saga_bank::Refund>([](const ShopOrder& d) { return saga_bank::Refund{d.order}; })
      .timeout(std::chrono::seconds(1))
      .attempts(2, std::chrono::milliseconds(100))
      .resolve_uncertain_for(resolve_for)
      .step<Ship>("ship", [](const ShopOrder& d) { return Ship{d.order}; })
      .compensation_retries(12, std::chrono::milliseconds(200));
}

// The orchestrating side: its own connection, Charge and Refund routed to
// the bank, Hold/Unhold/Ship handled here, saga state in "shop_sagas".
struct Shop {
  explicit Shop(const catga::test::NatsServer& server) : conn(connect(server, "shop")) {
    transport = cn::JetStreamTransport::create(conn, js_options()).value();
    mediator.attach(*transport);
    mediator.route_remote<saga_bank::Charge>();
    mediator.route_remote<saga_bank::Refund>();
    mediator.handle<Hold>([this](const Hold&) { ++holds; });
    mediator.handle<Unhold>([this](const Unhold&) { --holds; });
    mediator.handle<Ship>([](const Ship&) {});
    cn::KvBucketOptions o;
    o.bucket = "shop_sagas";
    o.storage = cn::StorageType::memory;
    store = std::make_shared<catga::KvSagaStore>(cn::KvBucket::open(conn, o).value());
    cn::KvBucketOptions l;
    l.bucket = std::string(saga_bank::kLedgerBucket);
    l.storage = cn::StorageType::memory;
    ledger = cn::KvBucket::open(conn, l).value();
  }
  ~Shop() { (void)transport->stop(std::chrono::seconds(10)); }

  std::shared_ptr<cn::Connection> conn;
  std::unique_ptr<cn::JetStreamTransport> transport;
  catga::Mediator mediator;
  std::shared_ptr<catga::KvSagaStore> store;
  std::shared_ptr<cn::KvBucket> ledger;  // the bank's, read by the test
  std::atomic<int> holds{0};
};

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char t[] = "/tmp/catga-saga-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::unique_ptr<catga::test::ChildProcess> start_bank(const catga::test::NatsServer& server, const TempDir& dir,
                                                const std::string& name, const std::string& stall_on = {}) {
  std::vector<std::string> args{SAGA_BANK_SERVICE, "--url", server.url(), "--ready", dir.file(name + ".ready")};
  if (!stall_on.empty()) args.insert(args.end(), {"--stall-on", stall_on});
  auto bank = std::make_unique<catga::test::ChildProcess>(std::move(args), dir.file(name + ".log"));
  REQUIRE_MESSAGE(catga::test::wait_for([&] { return std::filesystem::exists(dir.file(name + ".ready")); }, kWait),
                  bank->log());
  return bank;
}

}  // namespace saga_nats_test

TEST_CASE("over NATS: the service of a step is SIGKILLed after charging, restarted late: every charge of a cancelled "
          "saga refunded, none twice") {
  catga::test::NatsServer server;
  TempDir dir;
  std::chrono::milliseconds resolve_for{0};
  std::string order;
  SUBCASE("the step is resent until the service is back: completed, charged once") {
    resolve_for = std::chrono::seconds(30);
    order = "late-pay";
  }
  SUBCASE("the saga gives up on the step before the service is back: compensated, the charge refunded") {
    order = "lost-pay";
  }

  // The bank applies the charge, then stalls until it is killed: the reply never leaves.
  auto bank = start_bank(server, dir, "bank-1", order);
  Shop shop(server);
  auto saga = shop_saga(resolve_for);
  catga::SagaOrchestrator orch(shop.mediator, shop.store, options("shop-1"));
  orch.add(saga);
  REQUIRE(orch.start(saga, order, ShopOrder{order, 30, ""}));
  REQUIRE_MESSAGE(
      catga::test::wait_for([&] { return std::filesystem::exists(dir.file("bank-1.ready.stalled")); }, kWait),
      bank->log());
  bank->kill();
  const auto killed = std::chrono::steady_clock::now();
  const std::string first_life = bank->log();
  CHECK(first_life.find("bank: charged charge." + order + ".s1.1") != std::string::npos);

  // Restarted late: after the step's timeout (1 s) and the resends its
  // attempts allow, which met no service (no_handler).
  std::this_thread::sleep_until(killed + std::chrono::seconds(3));
  const auto during = shop.store->load(order).value().record;
  CHECK_FALSE(catga::is_final(during.status));  // still settling the charge (or its refund)
  bank = start_bank(server, dir, "bank-2");
  auto r = orch.wait(order, kWait);
  REQUIRE(r);
  REQUIRE(catga::is_final(r->status));
  const std::string second_life = bank->log();
  INFO("bank, first life:\n" << first_life << "bank, second life:\n" << second_life);

  // The ledger is consistent with the saga's outcome: no double charge
  // (every send carried the first one's id), and a cancelled saga's charge
  // refunded; a completed one's not.
  const auto charges = shop.ledger->keys(saga_bank::charge_prefix(order)).value();
  CHECK(charges == V{"charge." + order + ".s1.1"});
  const auto refund = shop.ledger->get(saga_bank::refund_key(order)).value();
  if (r->status == catga::SagaStatus::compensated) {
    CHECK_MESSAGE(refund.has_value(), "charged but never refunded");
    if (refund) CHECK(nlohmann::json::parse(refund->value).get<V>() == charges);
    CHECK(shop.holds.load() == 0);
  } else {
    CHECK(r->status == catga::SagaStatus::completed);
    CHECK_FALSE(refund.has_value());
    CHECK(shop.holds.load() == 1);
  }
  // Which of the two each policy leads to.
  if (resolve_for.count() > 0) {
    CHECK(r->status == catga::SagaStatus::completed);
    CHECK(r->data.get<ShopOrder>().payment == "P-" + order);
    // The restarted bank took the dead one's claim over and found the charge.
    CHECK(second_life.find("bank: already charged charge." + order + ".s1.1") != std::string::npos);
  } else {
    CHECK(r->status == catga::SagaStatus::compensated);
    CHECK(r->error.find("charge: outcome unknown") == 0);
    CHECK(history_count(*r, "compensated") == 2);
  }
}
