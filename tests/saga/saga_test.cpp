// Saga orchestration with local handlers and the in-memory saga store:
// every branch (success, failure at each step, retries, compensation
// failure, timeout, resume after a crash, two orchestrators).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <catga/pipeline/idempotency.hpp>
#include <catga/pipeline/in_memory_idempotency_store.hpp>
#include <catga/pipeline/metrics.hpp>
#include <catga/saga/events.hpp>
#include <catga/saga/kv_saga_store.hpp>
#include <catga/saga/orchestrator.hpp>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "watched_key_value.hpp"

namespace saga_test {

struct TripData {
  std::string trip;
  std::string flight;
  std::string hotel;
  std::string car;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TripData, trip, flight, hotel, car)

struct BookFlight { std::string trip; };
CATGA_COMMAND(BookFlight, std::string, trip)
struct CancelFlight { std::string trip; std::string flight; std::string reason; };
CATGA_COMMAND(CancelFlight, void, trip, flight, reason)
struct BookHotel { std::string trip; std::string flight; };
CATGA_COMMAND(BookHotel, std::string, trip, flight)
struct CancelHotel { std::string trip; std::string hotel; };
CATGA_COMMAND(CancelHotel, void, trip, hotel)
struct RentCar { std::string trip; };
CATGA_COMMAND(RentCar, std::string, trip)

// What the "services" did, and how they should fail.
struct World {
  std::mutex mutex;
  std::vector<std::string> log;            // "BookFlight", "CancelHotel", ...
  std::vector<std::string> ids;            // message ids of step commands, in order
  std::vector<std::string> tracestates;    // their W3C tracestate headers ("" if none)
  std::vector<std::uint64_t> trace_los;    // their trace ids' low halves
  std::set<std::string> applied;           // deduplication by message id
  std::string fail_step;                   // command name failing non-retryably
  std::string flaky_step;                  // command name failing retryably `flaky_times` times
  int flaky_times = 0;
  bool fail_compensation = false;
  bool slow_hotel = false;
  std::atomic<int> effects{0};

  // Records a call; returns false when this id was applied before.
  bool record(const std::string& what, const catga::Context& ctx) {
    std::lock_guard lock(mutex);
    log.push_back(what);
    ids.push_back(ctx.message_id.text().str());
    tracestates.emplace_back(ctx.headers.get("tracestate").value_or(""));
    trace_los.push_back(ctx.trace.trace_lo);
    return applied.insert(ctx.message_id.text().str()).second;
  }
  std::vector<std::string> calls() {
    std::lock_guard lock(mutex);
    return log;
  }
};

void register_services(catga::Mediator& m, World& w) {
  m.handle<BookFlight>([&w](const BookFlight& c, catga::Context& ctx) -> catga::Result<std::string> {
    if (w.flaky_step == "BookFlight" && w.flaky_times > 0) {
      --w.flaky_times;
      w.record("BookFlight!retry", ctx);
      return catga::make_error("busy", "try again", true);
    }
    if (w.record("BookFlight", ctx)) ++w.effects;
    if (w.fail_step == "BookFlight") return catga::make_error("no_seats", "flight full");
    return "F-" + c.trip;
  });
  m.handle<CancelFlight>([&w](const CancelFlight& c, catga::Context& ctx) -> catga::Status {
    w.record("CancelFlight", ctx);
    REQUIRE(c.reason.find("failed") == std::string::npos);  // the reason is the original failure
    REQUIRE(!c.reason.empty());
    if (w.fail_compensation) return catga::make_error("down", "airline down", true);
    return {};
  });
  m.handle<BookHotel>([&w](const BookHotel& c, catga::Context& ctx) -> catga::Result<std::string> {
    if (w.slow_hotel) {
      w.record("BookHotel!slow", ctx);
      // Handlers are synchronous: this one notices its deadline and gives up.
      while (!ctx.expired()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      return catga::make_error(catga::errc::timeout, "hotel did not answer in time", true);
    }
    if (w.record("BookHotel", ctx)) ++w.effects;
    if (w.fail_step == "BookHotel") return catga::make_error("no_rooms", "hotel full");
    REQUIRE(c.flight == "F-" + c.trip);  // data from step 1 reaches step 2
    return "H-" + c.trip;
  });
  m.handle<CancelHotel>([&w](const CancelHotel&, catga::Context& ctx) -> catga::Status {
    w.record("CancelHotel", ctx);
    return {};
  });
  m.handle<RentCar>([&w](const RentCar& c, catga::Context& ctx) -> catga::Result<std::string> {
    if (w.record("RentCar", ctx)) ++w.effects;
    if (w.fail_step == "RentCar") return catga::make_error("no_cars", "no cars left");
    return "C-" + c.trip;
  });
}

catga::SagaDefinition<TripData> trip_saga() {
  return catga::SagaDefinition<TripData>("trip")
      .step<BookFlight>("flight", [](const TripData& d) { return BookFlight{d.trip}; },
                        [](TripData& d, const std::string& f) { d.flight = f; })
      .compensate<CancelFlight>(
          [](const TripData& d, std::string_view why) { return CancelFlight{d.trip, d.flight, std::string(why)}; })
      .attempts(3, std::chrono::milliseconds(1))
      .step<BookHotel>("hotel", [](const TripData& d) { return BookHotel{d.trip, d.flight}; },
                       [](TripData& d, const std::string& h) { d.hotel = h; })
      .compensate<CancelHotel>([](const TripData& d) { return CancelHotel{d.trip, d.hotel}; })
      .timeout(std::chrono::milliseconds(50))
      .attempts(1, std::chrono::milliseconds(1))
      .step<RentCar>("car", [](const TripData& d) { return RentCar{d.trip}; },
                     [](TripData& d, const std::string& c) { d.car = c; })
      .compensation_retries(3, std::chrono::milliseconds(1));
}

struct Fixture {
  World world;
  catga::Mediator mediator;
  std::shared_ptr<catga::InMemorySagaStore> store = std::make_shared<catga::InMemorySagaStore>();
  std::vector<std::string> events;
  std::mutex events_mutex;
  catga::SagaDefinition<TripData> saga = trip_saga();

  Fixture() {
    register_services(mediator, world);
    auto note = [this](std::string what) {
      std::lock_guard lock(events_mutex);
      events.push_back(std::move(what));
    };
    mediator.on<catga::SagaStarted>([note](const catga::SagaStarted&) { note("started"); });
    mediator.on<catga::SagaStepCompleted>(
        [note](const catga::SagaStepCompleted& e) { note("step:" + e.step_name); });
    mediator.on<catga::SagaCompleted>([note](const catga::SagaCompleted&) { note("completed"); });
    mediator.on<catga::SagaCompensated>([note](const catga::SagaCompensated&) { note("compensated"); });
    mediator.on<catga::SagaFailed>([note](const catga::SagaFailed& e) { note("failed:" + e.step_name); });
  }
  catga::SagaOptions options(std::string instance = "a") {
    catga::SagaOptions o;
    o.instance_id = std::move(instance);
    o.workers = 2;
    return o;
  }
  // Lifecycle events are published right after the final state is stored,
  // so wait() may return a moment before the last one arrives.
  std::vector<std::string> lifecycle(std::size_t at_least = 0) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      {
        std::lock_guard lock(events_mutex);
        if (events.size() >= at_least || std::chrono::steady_clock::now() > until) return events;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
};

constexpr auto kWait = std::chrono::seconds(20);

}  // namespace saga_test

using namespace saga_test;
using V = std::vector<std::string>;

TEST_CASE("every step succeeds: completed, data flows between steps, lifecycle events published") {
  Fixture f;
  catga::SagaOrchestrator orch(f.mediator, f.store, f.options());
  orch.add(f.saga);
  REQUIRE(orch.start(f.saga, "t1", TripData{"t1", "", "", ""}));
  auto r = orch.wait("t1", kWait);
  REQUIRE(r);
  CHECK(r->status == catga::SagaStatus::completed);
  auto data = r->data.get<TripData>();
  CHECK(data.flight == "F-t1");
  CHECK(data.hotel == "H-t1");
  CHECK(data.car == "C-t1");
  CHECK(f.world.calls() == V{"BookFlight", "BookHotel", "RentCar"});
  CHECK(f.lifecycle(5) == V{"started", "step:flight", "step:hotel", "step:car", "completed"});
  // Step command ids derive from saga id + step + attempt.
  CHECK(f.world.ids == V{"t1/s0/1", "t1/s1/1", "t1/s2/1"});
}

// Issue 26: every step waited for the publish of its SagaStepCompleted (on
// JetStream, a round trip to the stream) before the next step was sent.
TEST_CASE("the steps do not wait for lifecycle events; those still arrive, in order, and stop() publishes what waits") {
  Fixture f;
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool open = false;
  f.mediator.on<catga::SagaStepCompleted>([&](const catga::SagaStepCompleted&) {
    std::unique_lock lock(gate_mu);
    gate_cv.wait_for(lock, std::chrono::seconds(30), [&] { return open; });
  });
  auto release = [&] {
    {
      std::lock_guard lock(gate_mu);
      open = true;
    }
    gate_cv.notify_all();
  };
  catga::SagaOrchestrator orch(f.mediator, f.store, f.options());
  orch.add(f.saga);
  REQUIRE(orch.start(f.saga, "t-async", TripData{"t-async", "", "", ""}));
  // The first SagaStepCompleted is held up in its handler; the saga finishes regardless.
  auto r = orch.wait("t-async", std::chrono::seconds(10));
  REQUIRE(r);
  CHECK(r->status == catga::SagaStatus::completed);
  CHECK(f.world.calls() == V{"BookFlight", "BookHotel", "RentCar"});
  {
    // Nothing after the held event has been published yet.
    const auto so_far = f.lifecycle();
    CHECK(std::find(so_far.begin(), so_far.end(), "step:hotel") == so_far.end());
    CHECK(std::find(so_far.begin(), so_far.end(), "completed") == so_far.end());
  }
  SUBCASE("released: the rest follow in order") {
    release();
    CHECK(f.lifecycle(5) == V{"started", "step:flight", "step:hotel", "step:car", "completed"});
  }
  SUBCASE("stop() publishes what waits") {
    std::thread opener([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      release();
    });
    orch.stop();
    opener.join();
    std::lock_guard lock(f.events_mutex);
    CHECK(f.events == V{"started", "step:flight", "step:hotel", "step:car", "completed"});
  }
}

TEST_CASE("every step command carries the trace and tracestate of the request that started the saga") {
  Fixture f;
  catga::SagaOrchestrator orch(f.mediator, f.store, f.options());
  orch.add(f.saga);
  catga::Context request = catga::Context::root();
  request.headers.set("tracestate", "vendor=abc,other=1");
  {
    catga::CurrentContextScope scope(request);
    REQUIRE(orch.start(f.saga, "ts", TripData{"ts", "", "", ""}));
  }
  auto r = orch.wait("ts", kWait);
  REQUIRE(r);
  CHECK(r->status == catga::SagaStatus::completed);
  CHECK(r->tracestate == "vendor=abc,other=1");
  // Persisted: a record read back by another instance still has it.
  const nlohmann::json stored = *r;
  CHECK(stored.get<catga::SagaRecord>().tracestate == "vendor=abc,other=1");
  CHECK(f.world.tracestates == V{"vendor=abc,other=1", "vendor=abc,other=1", "vendor=abc,other=1"});
  CHECK(f.world.trace_los ==
        std::vector<std::uint64_t>{request.trace.trace_lo, request.trace.trace_lo, request.trace.trace_lo});
}

TEST_CASE("a failed step compensates the completed steps in reverse order") {
  SUBCASE("failure at step 1: nothing to compensate") {
    Fixture f;
    f.world.fail_step = "BookFlight";
    catga::SagaOrchestrator orch(f.mediator, f.store, f.options());
    orch.add(f.saga);
    REQUIRE(orch.start(f.saga, "t", TripData{"t", "", "", ""}));
    auto r = orch.wait("t", kWait);
    CHECK(r->status == catga::SagaStatus::compensated);
    CHECK(r->error.find("no_seats") != std::string::npos);
    CHECK(f.world.calls() == V{"BookFlight"});
    CHECK(f.lifecycle(2) == V{"started", "compensated"});
  }
  SUBCASE("failure at step 2: flight cancelled") {
    Fixture f;
    f.world.fail_step = "BookHotel";
    catga::SagaOrchestrator orch(f.mediator, f.store, f.options());
    orch.add(f.saga);
    REQUIRE(orch.start(f.saga, "t", TripData{"t", "", "", ""}));
    auto r = orch.wait("t", kWait);
    CHECK(r->status == catga::SagaStatus::compensated);
    CHECK(f.world.calls() == V{"BookFlight", "BookHotel", "CancelFlight"});
  }
  SUBCASE("failure at step 3: hotel then flight cancelled, with the data steps produced") {
    Fixture f;
    f.world.fail_step = "RentCar";
    std::string cancelled_hotel;
    catga::SagaOrchestrator orch(f.mediator, f.store, f.options());
    orch.add(f.saga);
    REQUIRE(orch.start(f.saga, "t", TripData{"t", "", "", ""}));
    auto r = orch.wait("t", kWait);
    CHECK(r->status == catga::SagaStatus::compensated);
    CHECK(f.world.calls() == V{"BookFlight", "BookHotel", "RentCar", "CancelHotel", "CancelFlight"});
    CHECK(f.world.ids.back() == "t/c0/1");
    CHECK(f.lifecycle(4) == V{"started", "step:flight", "step:hotel", "compensated"});
    // The history answers who did what, in which order.
    V whats;
    for (const auto& h : r->history) whats.push_back(h.step_name + ":" + h.what);
    CHECK(whats == V{"flight:completed", "hotel:completed", "car:failed", "hotel:compensated", "flight:compensated"});
  }
}

TEST_CASE("retryable failures are retried with the same command id, then succeed") {
  Fixture f;
  f.world.flaky_step = "BookFlight";
  f.world.flaky_times = 2;
  std::vector<std::chrono::milliseconds> slept;
  auto o = f.options();
  o.sleep = [&](std::chrono::milliseconds d) { slept.push_back(d); };
  o.workers = 1;
  catga::SagaOrchestrator orch(f.mediator, f.store, o);
  orch.add(f.saga);
  REQUIRE(orch.start(f.saga, "t", TripData{"t", "", "", ""}));
  auto r = orch.wait("t", kWait);
  CHECK(r->status == catga::SagaStatus::completed);
  // A retryable failure may hide an effect (the receiver releases its
  // idempotency claim, so the same id runs the handler again).
  CHECK(f.world.ids == V{"t/s0/1", "t/s0/1", "t/s0/1", "t/s1/1", "t/s2/1"});
  CHECK(slept == std::vector<std::chrono::milliseconds>{std::chrono::milliseconds(1), std::chrono::milliseconds(2)});
}

TEST_CASE("a compensation that keeps failing ends in compensation_failed with a SagaFailed event") {
  Fixture f;
  f.world.fail_step = "BookHotel";
  f.world.fail_compensation = true;
  catga::SagaOrchestrator orch(f.mediator, f.store, f.options());
  orch.add(f.saga);
  REQUIRE(orch.start(f.saga, "t", TripData{"t", "", "", ""}));
  auto r = orch.wait("t", kWait);
  CHECK(r->status == catga::SagaStatus::compensation_failed);
  CHECK(f.world.calls() == V{"BookFlight", "BookHotel", "CancelFlight", "CancelFlight", "CancelFlight"});
  CHECK(f.lifecycle(3).back() == "failed:flight");
  CHECK(r->error.find("compensation of flight failed") != std::string::npos);
  // Still listed as final, never silently dropped.
  CHECK(f.store->list_active()->empty());
  CHECK(f.store->list_all()->size() == 1);
}

TEST_CASE("a step past its deadline times out and is compensated itself (its outcome is unknown)") {
  Fixture f;
  f.world.slow_hotel = true;
  catga::SagaOrchestrator orch(f.mediator, f.store, f.options());
  orch.add(f.saga);
  REQUIRE(orch.start(f.saga, "t", TripData{"t", "", "", ""}));
  auto r = orch.wait("t", kWait);
  CHECK(r->status == catga::SagaStatus::compensated);
  CHECK(r->error.find("timeout") != std::string::npos);
  CHECK(f.world.calls() == V{"BookFlight", "BookHotel!slow", "CancelHotel", "CancelFlight"});
}

TEST_CASE("starting an existing saga id returns it instead of starting a second one") {
  Fixture f;
  catga::SagaOrchestrator orch(f.mediator, f.store, f.options());
  orch.add(f.saga);
  REQUIRE(orch.start(f.saga, "t", TripData{"t", "", "", ""}));
  REQUIRE(orch.wait("t", kWait));
  auto again = orch.start(f.saga, "t", TripData{"t", "", "", ""});
  REQUIRE(again);
  CHECK(again->status == catga::SagaStatus::completed);
  CHECK(f.world.calls().size() == 3);
  CHECK_FALSE(orch.start_json("nope", "x", {}));
}

// Wraps a store and fails the update that would record a given transition,
// as if the process died right after the command was handled.
class CrashingStore final : public catga::SagaStore {
 public:
  explicit CrashingStore(std::shared_ptr<catga::SagaStore> inner) : inner_(std::move(inner)) {}
  std::function<bool(const catga::SagaRecord&)> crash_before;
  catga::Result<std::uint64_t> create(const catga::SagaRecord& r) override { return inner_->create(r); }
  catga::Result<catga::StoredSaga> load(std::string_view id) override { return inner_->load(id); }
  catga::Result<std::uint64_t> update(const catga::SagaRecord& r, std::uint64_t rev) override {
    if (crash_before && crash_before(r)) return catga::make_error(catga::errc::unavailable, "process died");
    return inner_->update(r, rev);
  }
  catga::Result<std::vector<catga::StoredSaga>> load_active() override { return inner_->load_active(); }
  catga::Result<std::vector<std::string>> list_all() override { return inner_->list_all(); }

 private:
  std::shared_ptr<catga::SagaStore> inner_;
};

TEST_CASE("resume after a crash: same instance at once, another instance after the lease") {
  SUBCASE("crash after step 1 was recorded; restart with the same instance id resumes at step 2") {
    Fixture f;
    {
      catga::SagaOrchestrator a(f.mediator, f.store, f.options("pod-1"));
      a.add(f.saga);
      // The write completing step 0 also records step 1's send: the crash
      // comes before BookHotel is sent; the restart resends it, same id.
      a.after_persist = [](const catga::SagaRecord& r) { return r.step != 1; };
      REQUIRE(a.start(f.saga, "t", TripData{"t", "", "", ""}));
      auto r = a.wait("t", std::chrono::milliseconds(300));
      CHECK(r->status == catga::SagaStatus::running);
      CHECK(r->step == 1);
    }
    catga::SagaOrchestrator restarted(f.mediator, f.store, f.options("pod-1"));
    restarted.add(f.saga);
    CHECK(*restarted.recover() == 1);
    auto r = restarted.wait("t", kWait);
    CHECK(r->status == catga::SagaStatus::completed);
    CHECK(f.world.calls() == V{"BookFlight", "BookHotel", "RentCar"});  // no step ran twice
  }
  SUBCASE("crash after a command was handled but before it was recorded: the same id is resent") {
    Fixture f;
    auto crashing = std::make_shared<CrashingStore>(f.store);
    crashing->crash_before = [](const catga::SagaRecord& r) {
      return r.status == catga::SagaStatus::running && r.step == 2;  // completion of step 1 (hotel)
    };
    auto o = f.options("pod-1");
    o.lease = std::chrono::milliseconds(50);
    {
      catga::SagaOrchestrator a(f.mediator, crashing, o);
      a.add(f.saga);
      REQUIRE(a.start(f.saga, "t", TripData{"t", "", "", ""}));
      CHECK(a.wait("t", std::chrono::milliseconds(300))->status == catga::SagaStatus::running);
    }
    // Another instance takes over once the lease has expired.
    auto ob = f.options("pod-2");
    catga::SagaOrchestrator b(f.mediator, f.store, ob);
    b.add(f.saga);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // pod-1's lease (50 ms) runs out
    CHECK(*b.recover() == 1);
    auto r = b.wait("t", kWait);
    CHECK(r->status == catga::SagaStatus::completed);
    CHECK(r->owner == "pod-2");
    // BookHotel was delivered twice with the same id; its effect applied once.
    V hotel_ids;
    for (std::size_t i = 0; i < f.world.log.size(); ++i) {
      if (f.world.log[i] == "BookHotel") hotel_ids.push_back(f.world.ids[i]);
    }
    CHECK(hotel_ids == V{"t/s1/1", "t/s1/1"});
    CHECK(f.world.effects.load() == 3);
  }
}

TEST_CASE("two orchestrators on one store never both advance a saga") {
  Fixture f;
  auto oa = f.options("a");
  auto ob = f.options("b");
  oa.lease = ob.lease = std::chrono::milliseconds(2);  // leases expire almost at once: constant takeovers
  oa.recovery_interval = ob.recovery_interval = std::chrono::milliseconds(1);
  catga::SagaOrchestrator a(f.mediator, f.store, oa);
  catga::SagaOrchestrator b(f.mediator, f.store, ob);
  a.add(f.saga);
  b.add(f.saga);
  for (int i = 0; i < 20; ++i) {
    REQUIRE(a.start(f.saga, "t" + std::to_string(i), TripData{"t" + std::to_string(i), "", "", ""}));
  }
  for (int i = 0; i < 20; ++i) {
    auto r = a.wait("t" + std::to_string(i), kWait);
    REQUIRE(r);
    CHECK(r->status == catga::SagaStatus::completed);
    int completed = 0;
    for (const auto& h : r->history) completed += h.what == "completed" ? 1 : 0;
    CHECK(completed == 3);  // each step recorded once, whoever drove it
  }
  CHECK(f.world.effects.load() == 60);  // duplicates (same id) were not applied twice
}

TEST_CASE("KvSagaStore over a KeyValue bucket: same behaviour, revisions from the bucket") {
  Fixture f;
  auto kv = std::make_shared<catga::InMemoryKeyValue>();
  auto store = std::make_shared<catga::KvSagaStore>(kv);
  catga::SagaOrchestrator orch(f.mediator, store, f.options());
  orch.add(f.saga);
  f.world.fail_step = "RentCar";
  REQUIRE(orch.start(f.saga, "kv-1", TripData{"kv-1", "", "", ""}));
  auto r = orch.wait("kv-1", kWait);
  CHECK(r->status == catga::SagaStatus::compensated);
  CHECK(*store->list_all() == V{"kv-1"});  // index keys ("active.*") are not sagas
  CHECK(kv->keys("active.")->size() >= 2);  // the meta key and the shard kv-1 was indexed in
  auto stale = store->load("kv-1");
  REQUIRE(stale);
  CHECK(stale->revision == kv->get("kv-1")->value().revision);
  CHECK(store->update(stale->record, stale->revision - 1).error().code == catga::errc::conflict);
  CHECK(store->list_active()->empty());
  CHECK_FALSE(orch.start(f.saga, "bad id with spaces", TripData{}));
}

// A running saga driven by another, live instance: active, but not ours to recover.
catga::SagaRecord foreign_running(std::string id) {
  catga::SagaRecord r;
  r.id = std::move(id);
  r.type = "trip";
  r.data = TripData{r.id, "", "", ""};
  r.owner = "elsewhere";
  r.created_ms = r.updated_ms = catga::unix_ms_now();
  r.lease_until_ms = r.created_ms + 3'600'000;
  return r;
}

// Finishes `n` sagas "done-<i>" and adds two running sagas of a live
// instance ("live-1", "live-2").
void finish_many(Fixture& f, catga::SagaOrchestrator& orch, catga::SagaStore& store, int n) {
  for (int i = 0; i < n; ++i) {
    const std::string id = "done-" + std::to_string(i);
    REQUIRE(orch.start(f.saga, id, TripData{id, "", "", ""}));
  }
  for (int i = 0; i < n; ++i) {
    REQUIRE(orch.wait("done-" + std::to_string(i), kWait)->status == catga::SagaStatus::completed);
  }
  REQUIRE(store.create(foreign_running("live-1")));
  REQUIRE(store.create(foreign_running("live-2")));
}

using saga_test_support::WatchedKeyValue;

// Whether saga `id` is in one of the KvSagaStore index keys of `bucket`.
bool in_index(catga::KeyValue& bucket, const std::string& id) {
  const auto keys = bucket.keys("active.").value();
  for (const auto& key : keys) {
    if (key == "active.meta") continue;
    auto ids = nlohmann::json::parse(bucket.get(key)->value().value);
    if (ids.contains(id)) return true;
  }
  return false;
}

TEST_CASE("a recovery pass reads active sagas only: 1,000 finished sagas in a KvSagaStore are not visited") {
  Fixture f;
  auto kv = std::make_shared<WatchedKeyValue>(std::make_shared<catga::InMemoryKeyValue>());
  auto store = std::make_shared<catga::KvSagaStore>(kv);
  catga::SagaOrchestrator orch(f.mediator, store, f.options());
  orch.add(f.saga);
  constexpr int kFinished = 1000;
  finish_many(f, orch, *store, kFinished);
  // wait() returns once a saga's record is final; KvSagaStore::update takes
  // it out of the active index right after. Let the last ones get there
  // (else list_active may still meet one, read it and drop it).
  auto finished_indexed = [&] {
    const auto keys = kv->keys("active.").value();  // a copy: the Result is a temporary
    for (const auto& key : keys) {
      if (key == "active.meta") continue;
      auto e = kv->get(key);
      if (!e || !*e) continue;
      const auto ids = nlohmann::json::parse((*e)->value, nullptr, false);
      if (!ids.is_object()) continue;
      for (const auto& [id, v] : ids.items()) {
        if (id.rfind("done-", 0) == 0) return true;
      }
    }
    return false;
  };
  for (int i = 0; i < 1000 && finished_indexed(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE_FALSE(finished_indexed());

  kv->record_reads = 0;
  auto active = store->list_active();
  REQUIRE(active);
  CHECK(*active == V{"live-1", "live-2"});  // none of the finished ones
  CHECK(kv->record_reads.exchange(0) <= 2);  // one read per active saga, none per finished one

  auto scheduled = orch.recover();
  REQUIRE(scheduled);
  CHECK(*scheduled == 0);  // both belong to a live instance
  CHECK(kv->record_reads.exchange(0) <= 2);

  // What a metrics scrape calls.
  auto counts = store->count_active();
  REQUIRE(counts);
  CHECK(counts->running == 2);
  CHECK(counts->compensating == 0);
  CHECK(kv->record_reads.exchange(0) <= 2);
  auto all = store->count();
  REQUIRE(all);
  CHECK(all->running == 2);
  CHECK(all->completed == kFinished);  // from the totals the index keeps, not from the records
  CHECK(all->compensated + all->compensation_failed == 0);
  CHECK(kv->record_reads.exchange(0) <= 2);

  CHECK(store->list_all()->size() == kFinished + 2);  // finished sagas are kept, just not visited
}

// Stores `id` as a running saga of a live instance, then as finished in `status`.
void finish_as(catga::SagaStore& store, const std::string& id, catga::SagaStatus status) {
  REQUIRE(store.create(foreign_running(id)));
  auto s = store.load(id).value();
  s.record.status = status;
  REQUIRE(store.update(s.record, s.revision));
}

bool same(const catga::SagaCounts& a, const catga::SagaCounts& b) {
  return a.running == b.running && a.compensating == b.compensating && a.completed == b.completed &&
         a.compensated == b.compensated && a.compensation_failed == b.compensation_failed;
}

TEST_CASE("count(): every status, finished totals kept as sagas finish, no finished saga read") {
  const catga::SagaCounts expected{2, 1, 3, 2, 1};
  auto fill = [](catga::SagaStore& store) {
    for (const char* id : {"c1", "c2", "c3"}) finish_as(store, id, catga::SagaStatus::completed);
    for (const char* id : {"x1", "x2"}) finish_as(store, id, catga::SagaStatus::compensated);
    finish_as(store, "f1", catga::SagaStatus::compensation_failed);
    REQUIRE(store.create(foreign_running("r1")));
    REQUIRE(store.create(foreign_running("r2")));
    auto undo = foreign_running("u1");
    undo.status = catga::SagaStatus::compensating;
    REQUIRE(store.create(undo));
  };

  SUBCASE("InMemorySagaStore") {
    catga::InMemorySagaStore store;
    fill(store);
    CHECK(same(store.count().value(), expected));
    // A second final write of a finished saga is not a second finish.
    auto c1 = store.load("c1").value();
    REQUIRE(store.update(c1.record, c1.revision));
    CHECK(same(store.count().value(), expected));
  }

  SUBCASE("KvSagaStore: totals in the index keys, shared by every store on the bucket") {
    auto bucket = std::make_shared<catga::InMemoryKeyValue>();
    auto kv = std::make_shared<WatchedKeyValue>(bucket);
    catga::KvSagaStore store(kv);
    fill(store);
    kv->record_reads = 0;
    CHECK(same(store.count().value(), expected));
    CHECK(kv->record_reads.exchange(0) == 3);  // r1, r2, u1
    catga::KvSagaStore other(kv);  // another process
    CHECK(same(other.count().value(), expected));
    auto c1 = other.load("c1").value();
    REQUIRE(other.update(c1.record, c1.revision));
    CHECK(same(store.count().value(), expected));
  }

  SUBCASE("KvSagaStore: a finish whose index write failed is counted once, before and after the cleanup") {
    auto bucket = std::make_shared<catga::InMemoryKeyValue>();
    auto kv = std::make_shared<WatchedKeyValue>(bucket);
    catga::KvSagaStore store(kv);
    fill(store);
    REQUIRE(store.create(foreign_running("late")));
    kv->refuse_index_writes = true;
    auto late = store.load("late").value();
    late.record.status = catga::SagaStatus::compensated;
    REQUIRE(store.update(late.record, late.revision));  // stored; its index entry and count are not
    auto more = expected;
    ++more.compensated;
    CHECK(same(store.count().value(), more));  // counted from the listed record (cleanup refused)
    kv->refuse_index_writes = false;
    CHECK(same(store.count().value(), more));  // the cleanup counts it in the same write
    CHECK_FALSE(in_index(*bucket, "late"));
    CHECK(same(store.count().value(), more));
  }

  SUBCASE("KvSagaStore: a bucket indexed before totals were kept is counted once") {
    auto bucket = std::make_shared<catga::InMemoryKeyValue>();
    for (const char* id : {"c1", "c2"}) {
      auto done = foreign_running(id);
      done.status = catga::SagaStatus::completed;
      REQUIRE(bucket->create(id, nlohmann::json(done).dump()));
    }
    REQUIRE(bucket->create("r1", nlohmann::json(foreign_running("r1")).dump()));
    REQUIRE(bucket->create("active.meta", R"({"shards":32})"));  // the index without totals
    auto kv = std::make_shared<WatchedKeyValue>(bucket);
    catga::KvSagaStore store(kv);
    const catga::SagaCounts before{1, 0, 2, 0, 0};
    CHECK(same(store.count().value(), before));
    catga::KvSagaStore other(kv);
    kv->record_reads = 0;
    CHECK(same(other.count().value(), before));
    CHECK(kv->record_reads.load() == 1);  // r1 only: no second scan
    finish_as(other, "c3", catga::SagaStatus::completed);
    CHECK(store.count().value().completed == 3);
  }
}

TEST_CASE("InMemorySagaStore: finished sagas leave the active index, revisions and conflicts unchanged") {
  Fixture f;
  catga::SagaOrchestrator orch(f.mediator, f.store, f.options());
  orch.add(f.saga);
  finish_many(f, orch, *f.store, 100);
  CHECK(*f.store->list_active() == V{"live-1", "live-2"});
  auto loaded = f.store->load_active();
  REQUIRE(loaded);
  REQUIRE(loaded->size() == 2);
  CHECK(loaded->front().record.owner == "elsewhere");
  CHECK(f.store->count_active()->running == 2);

  // A refused write leaves the index as it was; a compensating saga is active.
  auto live = f.store->load("live-1").value();
  live.record.status = catga::SagaStatus::completed;
  CHECK(f.store->update(live.record, live.revision + 1).error().code == catga::errc::conflict);
  CHECK(f.store->list_active()->size() == 2);
  live.record.status = catga::SagaStatus::compensating;
  REQUIRE(f.store->update(live.record, live.revision));
  auto counts = f.store->count_active().value();
  CHECK(counts.running == 1);
  CHECK(counts.compensating == 1);
  live = f.store->load("live-1").value();
  live.record.status = catga::SagaStatus::compensated;
  REQUIRE(f.store->update(live.record, live.revision));
  CHECK(*f.store->list_active() == V{"live-2"});
  CHECK(f.store->list_all()->size() == 102);
}

TEST_CASE("KvSagaStore index: old buckets are indexed once, entries left by failed writes are dropped") {
  Fixture f;
  auto bucket = std::make_shared<catga::InMemoryKeyValue>();
  auto kv = std::make_shared<WatchedKeyValue>(bucket);

  SUBCASE("a bucket written before the index existed: its active sagas are found, once") {
    auto done = foreign_running("old-done");
    done.status = catga::SagaStatus::completed;
    REQUIRE(bucket->create("old-run", nlohmann::json(foreign_running("old-run")).dump()));
    REQUIRE(bucket->create("old-done", nlohmann::json(done).dump()));
    REQUIRE(bucket->create("old-junk", "not a saga"));  // skipped, not a reason to stop
    catga::KvSagaStore store(kv);
    CHECK(*store.list_active() == V{"old-run"});
    CHECK(bucket->get("active.meta")->has_value());
    // Another store (another process) on the same bucket does not scan again.
    catga::KvSagaStore other(kv);
    kv->record_reads = 0;
    CHECK(*other.list_active() == V{"old-run"});
    CHECK(kv->record_reads.load() == 1);
  }

  SUBCASE("the final state was stored but the index could not be updated: the next pass drops the entry") {
    catga::KvSagaStore store(kv);
    REQUIRE(store.create(foreign_running("t")));
    CHECK(in_index(*bucket, "t"));
    kv->refuse_index_writes = true;
    auto t = store.load("t").value();
    t.record.status = catga::SagaStatus::completed;
    REQUIRE(store.update(t.record, t.revision));  // the record decides; the index lags behind
    kv->refuse_index_writes = false;
    CHECK(in_index(*bucket, "t"));
    kv->record_reads = 0;
    CHECK(store.list_active()->empty());
    CHECK(kv->record_reads.exchange(0) == 1);
    CHECK_FALSE(in_index(*bucket, "t"));
    CHECK(store.list_active()->empty());
    CHECK(kv->record_reads.load() == 0);  // dropped for good
  }

  SUBCASE("a record that could not be created, or exists already and is final, is not left in the index") {
    catga::KvSagaStore store(kv);
    kv->refuse_record_writes = true;
    CHECK(store.create(foreign_running("lost")).error().code == catga::errc::unavailable);
    kv->refuse_record_writes = false;
    CHECK_FALSE(in_index(*bucket, "lost"));

    auto done = foreign_running("done");
    done.status = catga::SagaStatus::compensated;
    REQUIRE(store.create(done));
    CHECK_FALSE(in_index(*bucket, "done"));  // final from the start: never indexed
    CHECK(store.create(foreign_running("done")).error().code == catga::errc::conflict);
    CHECK_FALSE(in_index(*bucket, "done"));  // a second start of a finished saga
    REQUIRE(store.create(foreign_running("run")));
    CHECK(store.create(foreign_running("run")).error().code == catga::errc::conflict);
    CHECK(in_index(*bucket, "run"));  // ... of an active one keeps its entry
    CHECK(*store.list_active() == V{"run"});
    // An indexed record that cannot be read is skipped, the others still listed.
    REQUIRE(store.create(foreign_running("garbled")));
    REQUIRE(bucket->put("garbled", "{"));
    CHECK(*store.list_active() == V{"run"});
    CHECK(in_index(*bucket, "garbled"));
    CHECK(store.create(foreign_running("a.b")).error().code == catga::errc::validation);  // '.' is the index's
  }
}

// Steps whose outcome is uncertain (issue 19): the payment service charges,
// then its reply is lost, or it goes away. Its ledger applies every run of
// the handler; only the idempotency store in front of it (by command id)
// keeps a resent command from charging twice, as in a real service.
namespace saga_uncertain {

struct Reserve { std::string order; };
CATGA_COMMAND(Reserve, void, order)
struct Release { std::string order; };
CATGA_COMMAND(Release, void, order)
struct Pay { std::string order; int amount = 0; };
CATGA_COMMAND(Pay, std::string, order, amount)
struct Refund { std::string order; };
CATGA_COMMAND(Refund, void, order)
struct Ship { std::string order; };
CATGA_COMMAND(Ship, void, order)

struct OrderData {
  std::string order;
  int amount = 0;
  std::string payment;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(OrderData, order, amount, payment)

// The payment service, and the network between the saga and it.
struct Bank {
  std::mutex mutex;
  std::map<std::string, int> charged;   // order -> charges applied
  std::map<std::string, int> refunded;  // order -> charges undone
  std::map<std::string, int> reserved;  // order -> holds (+1 reserve, -1 release)
  int refund_runs = 0;                   // Refund handler runs (a refund of nothing included)
  int refuse_refunds = 0;                // the next N Refund runs fail non-retryably
  std::vector<std::string> sent;         // "<Type> <message id>", every send that reached the network
  // Faults of the network / service:
  int lose_pay_replies = 0;     // the next N Pay replies are lost after the service handled them
  int lose_refund_replies = 0;  // the same for Refund
  int lose_ship_replies = 0;    // the same for Ship
  int shipped = 0;              // Ship handler runs
  int unreachable_sends = 0;    // the next N sends of Pay or Refund find no service (no_handler)
  int unreachable_after_loss = 0;  // ... that many, from the first lost reply on
  bool pay_gone = false;        // from the next Pay on, no service serves Pay at all
  bool gone_after_first_pay = false;
  bool fail_ship = false;

  int net(const std::string& order) {
    std::lock_guard lock(mutex);
    return charged[order] - refunded[order];
  }
  int charges(const std::string& order) {
    std::lock_guard lock(mutex);
    return charged[order];
  }
  int holds(const std::string& order) {
    std::lock_guard lock(mutex);
    return reserved[order];
  }
  std::vector<std::string> sends(std::string_view type) {
    std::lock_guard lock(mutex);
    std::vector<std::string> out;
    for (const auto& s : sent) {
      if (s.rfind(std::string(type) + " ", 0) == 0) out.push_back(s.substr(type.size() + 1));
    }
    return out;
  }
};

void register_bank(catga::Mediator& m, Bank& bank) {
  // The network: outside the service's idempotency behavior, so a lost reply
  // is lost after the service stored its outcome.
  m.use(catga::make_behavior([&bank](catga::Invocation& inv, catga::Next next) -> catga::Status {
    const bool pay = &inv.info == &catga::message_info<Pay>();
    const bool refund = &inv.info == &catga::message_info<Refund>();
    const bool ship = &inv.info == &catga::message_info<Ship>();
    if (ship) {
      {
        std::lock_guard lock(bank.mutex);
        bank.sent.push_back("Ship " + inv.context.message_id.text().str());
      }
      catga::Status s = next();
      std::lock_guard lock(bank.mutex);
      if (bank.lose_ship_replies > 0) {
        --bank.lose_ship_replies;
        return catga::make_error(catga::errc::timeout, "no reply before the deadline (the reply was lost)", true);
      }
      return s;
    }
    if (!pay && !refund) return next();
    {
      std::lock_guard lock(bank.mutex);
      bank.sent.push_back(std::string(pay ? "Pay " : "Refund ") + inv.context.message_id.text().str());
      if ((pay && bank.pay_gone) || bank.unreachable_sends > 0) {
        if (!(pay && bank.pay_gone)) --bank.unreachable_sends;
        return catga::make_error(catga::errc::no_handler, "no service serves it");
      }
    }
    catga::Status s = next();
    std::lock_guard lock(bank.mutex);
    if (pay && bank.gone_after_first_pay) bank.pay_gone = true;
    int& lose = pay ? bank.lose_pay_replies : bank.lose_refund_replies;
    if (lose > 0) {
      --lose;
      bank.unreachable_sends += std::exchange(bank.unreachable_after_loss, 0);
      return catga::make_error(catga::errc::timeout, "no reply before the deadline (the reply was lost)", true);
    }
    return s;
  }));
  catga::IdempotencyOptions idem;
  idem.store = std::make_shared<catga::InMemoryIdempotencyStore>();
  idem.remember_failures = true;
  m.use(std::make_shared<catga::IdempotencyBehavior>(idem));

  m.handle<Reserve>([&bank](const Reserve& c) -> catga::Status {
    std::lock_guard lock(bank.mutex);
    ++bank.reserved[c.order];
    return {};
  });
  m.handle<Release>([&bank](const Release& c) -> catga::Status {
    std::lock_guard lock(bank.mutex);
    --bank.reserved[c.order];
    return {};
  });
  m.handle<Pay>([&bank](const Pay& c) -> catga::Result<std::string> {
    std::lock_guard lock(bank.mutex);
    ++bank.charged[c.order];
    return "P-" + c.order;
  });
  // Idempotent and tolerant: undoes what is charged and not yet refunded,
  // which may be nothing.
  m.handle<Refund>([&bank](const Refund& c) -> catga::Status {
    std::lock_guard lock(bank.mutex);
    ++bank.refund_runs;
    if (bank.refuse_refunds > 0) {
      --bank.refuse_refunds;
      return catga::make_error("ledger_locked", "the ledger is closed for the night");
    }
    if (bank.charged[c.order] > bank.refunded[c.order]) ++bank.refunded[c.order];
    return {};
  });
  m.handle<Ship>([&bank](const Ship&) -> catga::Status {
    if (bank.fail_ship) return catga::make_error("no_courier", "nobody ships today");
    std::lock_guard lock(bank.mutex);
    ++bank.shipped;
    return {};
  });
}

catga::SagaDefinition<OrderData> order_saga() {
  return catga::SagaDefinition<OrderData>("order")
      .step<Reserve>("reserve", [](const OrderData& d) { return Reserve{d.order}; })
      .compensate<Release>([](const OrderData& d) { return Release{d.order}; })
      .step<Pay>("pay", [](const OrderData& d) { return Pay{d.order, d.amount}; },
                 [](OrderData& d, const std::string& p) { d.payment = p; })
      // From what the saga knew before the step: a refund of a payment whose
      // outcome stayed unknown has no payment id to go by.
      .compensate<Refund>([](const OrderData& d) { return Refund{d.order}; })
      .timeout(std::chrono::milliseconds(200))
      .attempts(3, std::chrono::milliseconds(1))
      // Nothing undoes a shipment: once sent, it is seen through.
      .step<Ship>("ship", [](const OrderData& d) { return Ship{d.order}; })
      .attempts(2, std::chrono::milliseconds(1))
      .compensation_retries(5, std::chrono::milliseconds(1));
}

struct Shop {
  Bank bank;
  catga::Mediator mediator;
  std::shared_ptr<catga::InMemorySagaStore> store = std::make_shared<catga::InMemorySagaStore>();
  catga::SagaDefinition<OrderData> saga = order_saga();
  Shop() { register_bank(mediator, bank); }
  catga::SagaOptions options(std::string instance = "a") {
    catga::SagaOptions o;
    o.instance_id = std::move(instance);
    o.workers = 2;
    return o;
  }
};

std::vector<std::string> steps(const catga::SagaRecord& r) {
  std::vector<std::string> out;
  for (const auto& h : r.history) out.push_back(h.step_name + ":" + h.what);
  return out;
}

}  // namespace saga_uncertain

using namespace saga_uncertain;

TEST_CASE("uncertain step: its reply was lost; resent with the same id, it is charged once and the saga completes") {
  Shop shop;
  shop.bank.lose_pay_replies = 1;
  catga::SagaOrchestrator orch(shop.mediator, shop.store, shop.options());
  orch.add(shop.saga);
  REQUIRE(orch.start(shop.saga, "o1", OrderData{"o1", 30, ""}));
  auto r = orch.wait("o1", kWait);
  REQUIRE(r);
  CHECK(r->status == catga::SagaStatus::completed);
  // The resend carried the first send's id: the service answered it from its
  // idempotency store instead of charging again.
  CHECK(shop.bank.sends("Pay") == V{"o1/s1/1", "o1/s1/1"});
  CHECK(shop.bank.charges("o1") == 1);
  CHECK(r->data.get<OrderData>().payment == "P-o1");
  CHECK(steps(*r) == V{"reserve:completed", "pay:retry", "pay:completed", "ship:completed"});
}

TEST_CASE("uncertain step: its reply was lost, then its service is gone; the step itself is compensated") {
  Shop shop;
  shop.bank.lose_pay_replies = 1;
  // The next four sends find nobody: two resends of Pay (no_handler says
  // nothing about the first send, which did charge), then two of Refund.
  shop.bank.unreachable_after_loss = 4;
  catga::SagaOrchestrator orch(shop.mediator, shop.store, shop.options());
  orch.add(shop.saga);
  REQUIRE(orch.start(shop.saga, "o2", OrderData{"o2", 30, ""}));
  auto r = orch.wait("o2", kWait);
  REQUIRE(r);
  CHECK(r->status == catga::SagaStatus::compensated);
  CHECK(r->error.find("pay: outcome unknown") == 0);
  CHECK(shop.bank.sends("Pay") == V{"o2/s1/1", "o2/s1/1", "o2/s1/1"});
  // No service, no effect: the refund's next try may take a new id.
  CHECK(shop.bank.sends("Refund") == V{"o2/c1/1", "o2/c1/2", "o2/c1/3"});
  // Charged and refunded (never "charged but never refunded"), stock released.
  CHECK(shop.bank.charges("o2") == 1);
  CHECK(shop.bank.net("o2") == 0);
  CHECK(shop.bank.holds("o2") == 0);
  CHECK(steps(*r) == V{"reserve:completed", "pay:retry", "pay:retry", "pay:failed", "pay:compensation_retry",
                       "pay:compensation_retry", "pay:compensated", "reserve:compensated"});
}

TEST_CASE("uncertain step: every reply is lost; the saga gives up, compensates it, and it was charged once") {
  Shop shop;
  shop.bank.lose_pay_replies = 1000;
  catga::SagaOrchestrator orch(shop.mediator, shop.store, shop.options());
  orch.add(shop.saga);
  REQUIRE(orch.start(shop.saga, "o3", OrderData{"o3", 30, ""}));
  auto r = orch.wait("o3", kWait);
  REQUIRE(r);
  CHECK(r->status == catga::SagaStatus::compensated);
  CHECK(r->error.find("outcome unknown after 3 sends: timeout") != std::string::npos);
  CHECK(shop.bank.sends("Pay").size() == 3);
  CHECK(shop.bank.charges("o3") == 1);  // three sends, one id, one charge
  CHECK(shop.bank.net("o3") == 0);
  CHECK(shop.bank.holds("o3") == 0);
}

TEST_CASE("uncertain step without compensation: resent past its attempts until answered; nothing before it undone") {
  // The chaos run's failure: ConfirmOrder (no compensation) stayed unknown
  // past its attempts, the saga refunded and released, and the order was
  // confirmed anyway. A step that cannot be undone is never given up on
  // while it may have taken effect.
  Shop shop;
  shop.bank.lose_ship_replies = 6;  // three times its attempts
  catga::SagaOrchestrator orch(shop.mediator, shop.store, shop.options());
  orch.add(shop.saga);
  REQUIRE(orch.start(shop.saga, "o7", OrderData{"o7", 30, ""}));
  auto r = orch.wait("o7", kWait);
  REQUIRE(r);
  CHECK(r->status == catga::SagaStatus::completed);
  CHECK(shop.bank.sends("Ship") == V(7, "o7/s2/1"));
  CHECK(shop.bank.shipped == 1);  // the idempotency store answered the six resends
  CHECK(shop.bank.net("o7") == 1);
  CHECK(shop.bank.holds("o7") == 1);
  CHECK(shop.bank.sends("Refund").empty());
}

TEST_CASE("uncertain step without compensation: a long wait keeps the saga's history bounded") {
  Shop shop;
  shop.bank.lose_ship_replies = 150;
  catga::SagaOptions o = shop.options();
  o.lease = std::chrono::milliseconds(40);  // waits of at most 20 ms between resends
  catga::SagaOrchestrator orch(shop.mediator, shop.store, o);
  orch.add(shop.saga);
  REQUIRE(orch.start(shop.saga, "o8", OrderData{"o8", 30, ""}));
  auto r = orch.wait("o8", kWait);
  REQUIRE(r);
  CHECK(r->status == catga::SagaStatus::completed);
  CHECK(shop.bank.sends("Ship").size() == 151);
  CHECK(r->history.size() == 65);  // 64 lines, the last resends folded into one, then "completed"
  CHECK(r->history.back().what == "completed");
  CHECK(shop.bank.net("o8") == 1);
}

TEST_CASE("uncertain compensation: a refund whose reply was lost is resent with the same id and runs once") {
  Shop shop;
  shop.bank.fail_ship = true;
  shop.bank.lose_refund_replies = 1;
  catga::SagaOrchestrator orch(shop.mediator, shop.store, shop.options());
  orch.add(shop.saga);
  REQUIRE(orch.start(shop.saga, "o4", OrderData{"o4", 30, ""}));
  auto r = orch.wait("o4", kWait);
  REQUIRE(r);
  CHECK(r->status == catga::SagaStatus::compensated);
  CHECK(shop.bank.sends("Refund") == V{"o4/c1/1", "o4/c1/1"});
  CHECK(shop.bank.refund_runs == 1);
  CHECK(shop.bank.net("o4") == 0);
  CHECK(shop.bank.holds("o4") == 0);
}

TEST_CASE("a compensation refused definitively is retried under a new id: the receiver remembers the refusal") {
  Shop shop;
  shop.bank.fail_ship = true;
  shop.bank.refuse_refunds = 1;
  catga::SagaOrchestrator orch(shop.mediator, shop.store, shop.options());
  orch.add(shop.saga);
  REQUIRE(orch.start(shop.saga, "o7", OrderData{"o7", 30, ""}));
  auto r = orch.wait("o7", kWait);
  REQUIRE(r);
  CHECK(r->status == catga::SagaStatus::compensated);
  // The same id again would be answered with the stored failure (remember_failures).
  CHECK(shop.bank.sends("Refund") == V{"o7/c1/1", "o7/c1/2"});
  CHECK(shop.bank.refund_runs == 2);
  CHECK(shop.bank.net("o7") == 0);
}

TEST_CASE("uncertain step: the orchestrator dies while it is unresolved; another one resumes it with the same id") {
  Shop shop;
  auto o1 = shop.options("pod-1");
  o1.lease = std::chrono::milliseconds(50);
  auto o2 = shop.options("pod-2");

  SUBCASE("died after recording the lost reply: the resend is answered from the idempotency store") {
    shop.bank.lose_pay_replies = 1;
    {
      catga::SagaOrchestrator a(shop.mediator, shop.store, o1);
      a.add(shop.saga);
      a.after_persist = [](const catga::SagaRecord& r) { return r.history.empty() || r.history.back().what != "retry"; };
      REQUIRE(a.start(shop.saga, "o5", OrderData{"o5", 30, ""}));
      REQUIRE(a.wait("o5", std::chrono::milliseconds(300))->status == catga::SagaStatus::running);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // pod-1's lease runs out
    catga::SagaOrchestrator b(shop.mediator, shop.store, o2);
    b.add(shop.saga);
    CHECK(*b.recover() == 1);
    auto r = b.wait("o5", kWait);
    REQUIRE(r);
    CHECK(r->status == catga::SagaStatus::completed);
    CHECK(shop.bank.sends("Pay") == V{"o5/s1/1", "o5/s1/1"});
    CHECK(shop.bank.charges("o5") == 1);
  }

  SUBCASE("died while the send was in flight, and the service is gone since: the step is compensated") {
    shop.bank.gone_after_first_pay = true;  // charges, replies, then no service serves Pay any more
    auto crashing = std::make_shared<CrashingStore>(shop.store);
    // The driver dies before it records the outcome of its first Pay.
    crashing->crash_before = [](const catga::SagaRecord& r) { return r.history.size() >= 2; };
    {
      catga::SagaOrchestrator a(shop.mediator, crashing, o1);
      a.add(shop.saga);
      REQUIRE(a.start(shop.saga, "o6", OrderData{"o6", 30, ""}));
      REQUIRE(a.wait("o6", std::chrono::milliseconds(300))->status == catga::SagaStatus::running);
    }
    CHECK(shop.bank.charges("o6") == 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    catga::SagaOrchestrator b(shop.mediator, shop.store, o2);
    b.add(shop.saga);
    CHECK(*b.recover() == 1);
    auto r = b.wait("o6", kWait);
    REQUIRE(r);
    CHECK(r->status == catga::SagaStatus::compensated);
    // no_handler on the resends does not mean "not charged": the first send was in flight.
    CHECK(shop.bank.net("o6") == 0);
    CHECK(shop.bank.holds("o6") == 0);
    CHECK(shop.bank.sends("Pay").front() == "o6/s1/1");
  }
}

// Issue 26: a saga's driver waited on two store round trips before its first
// step: a read of the record start() had just stored, and a write of it
// unchanged. It now starts from the stored record. Then each step cost two
// writes (its attempt before the send, its completion after) and the end a
// third: 2n + 1 for n steps. The completion of a step now also records the
// next step's send, start() records the first one and the last completion
// the end: n writes (3 here, was 7).
TEST_CASE("a saga is driven from the record start() stored, with one store write per step") {
  struct CountingStore final : catga::SagaStore {
    explicit CountingStore(std::shared_ptr<catga::SagaStore> inner) : inner(std::move(inner)) {}
    catga::Result<std::uint64_t> create(const catga::SagaRecord& r) override {
      created = "s" + std::to_string(r.step) + "/" + std::to_string(r.attempt);
      return inner->create(r);
    }
    catga::Result<catga::StoredSaga> load(std::string_view id) override {
      ++loads;
      return inner->load(id);
    }
    catga::Result<std::uint64_t> update(const catga::SagaRecord& r, std::uint64_t rev) override {
      {
        std::lock_guard lock(mu);
        updates.push_back("s" + std::to_string(r.step) + "/" + std::to_string(r.attempt) + " " +
                          std::string(catga::to_string(r.status)));
      }
      return inner->update(r, rev);
    }
    catga::Result<std::vector<catga::StoredSaga>> load_active() override { return inner->load_active(); }
    catga::Result<std::vector<std::string>> list_all() override { return inner->list_all(); }
    std::shared_ptr<catga::SagaStore> inner;
    std::atomic<int> loads{0};
    std::string created;
    std::mutex mu;
    std::vector<std::string> updates;
  };
  Fixture f;
  auto counting = std::make_shared<CountingStore>(f.store);
  catga::SagaOrchestrator orch(f.mediator, counting, f.options());
  orch.add(f.saga);
  REQUIRE(orch.start(f.saga, "t-fast", TripData{"t-fast", "", "", ""}));
  auto r = f.store->load("t-fast");  // polled past the counting store

  for (int i = 0; i < 20000 && (!r || !catga::is_final(r->record.status)); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    r = f.store->load("t-fast");
  }
  REQUIRE(r);
  CHECK(r->record.status == catga::SagaStatus::completed);
  CHECK(f.world.calls() == V{"BookFlight", "BookHotel", "RentCar"});
  CHECK(counting->loads.load() == 0);  // the driver never read it back
  CHECK(counting->created == "s0/1");  // BookFlight's send recorded before it was sent
  std::lock_guard lock(counting->mu);
  // Each completion records the next step's send; the last one the end.
  CHECK(counting->updates == V{"s1/1 running", "s2/1 running", "s3/0 completed"});
}

// Issue 26: joining or leaving the index read the shard before every write.
// A KvSagaStore now starts from the shard as it last read or wrote it; a
// write over a shard another store changed meanwhile is refused by the
// bucket and made again on a fresh read, so no entry is lost.
TEST_CASE("KvSagaStore: index shards are read once, not before every write; two stores lose no entry") {
  auto bucket = std::make_shared<catga::InMemoryKeyValue>();
  auto kv = std::make_shared<WatchedKeyValue>(bucket);
  catga::KvSagaStore a(kv);
  catga::KvSagaStore b(bucket);
  auto record = [](const std::string& id) {
    catga::SagaRecord r;
    r.id = id;
    r.type = "trip";
    r.data = nlohmann::json::object();
    r.owner = "a";
    return r;
  };
  constexpr int kSagas = 64;
  std::vector<std::uint64_t> revisions;
  for (int i = 0; i < kSagas; ++i) {
    auto created = a.create(record("a-" + std::to_string(i)));
    REQUIRE(created);
    revisions.push_back(*created);
    REQUIRE(b.create(record("b-" + std::to_string(i))));  // moves a's shards on behind its back
  }
  for (int i = 0; i < kSagas; ++i) {
    auto r = record("a-" + std::to_string(i));
    r.status = catga::SagaStatus::completed;
    REQUIRE(a.update(r, revisions[static_cast<std::size_t>(i)]));
  }
  // 128 index writes by a; before, each read its shard first (128 reads).
  // Now a create reads only a shard b wrote since (at most 64), and the
  // finishing writes, with b quiet, each shard at most once (32).
  CHECK(kv->index_reads.exchange(0) <= kSagas + 32);

  catga::KvSagaStore fresh(bucket);
  auto active = fresh.list_active();
  REQUIRE(active);
  CHECK(active->size() == static_cast<std::size_t>(kSagas));  // every b-*, no a-*
  for (const auto& id : *active) CHECK(id.rfind("b-", 0) == 0);
  auto counts = fresh.count();
  REQUIRE(counts);
  CHECK(counts->completed == static_cast<std::size_t>(kSagas));

  // Alone on its bucket, a store reads each shard at most once.
  auto solo_kv = std::make_shared<WatchedKeyValue>(std::make_shared<catga::InMemoryKeyValue>());
  catga::KvSagaStore solo(solo_kv);
  std::vector<std::uint64_t> solo_revisions;
  for (int i = 0; i < kSagas; ++i) solo_revisions.push_back(solo.create(record("s-" + std::to_string(i))).value());
  for (int i = 0; i < kSagas; ++i) {
    auto r = record("s-" + std::to_string(i));
    r.status = catga::SagaStatus::compensated;
    REQUIRE(solo.update(r, solo_revisions[static_cast<std::size_t>(i)]));
  }
  CHECK(solo_kv->index_reads.load() <= 32);  // before: 128
  CHECK(solo.list_active().value().empty());
  CHECK(solo.count().value().compensated == static_cast<std::size_t>(kSagas));
}

TEST_CASE("SagaOptions::metrics counts starts, completions, compensations and failures by saga type") {
  Fixture f;
  auto metrics = std::make_shared<catga::Metrics>();
  auto options = f.options();
  options.metrics = metrics;
  catga::SagaOrchestrator orch(f.mediator, f.store, options);
  orch.add(f.saga);
  const catga::MetricLabels trip{{"saga", "trip"}};
  auto& started = metrics->counter("catga_sagas_started_total", "", trip);
  auto& completed = metrics->counter("catga_sagas_completed_total", "", trip);
  auto& compensated = metrics->counter("catga_sagas_compensated_total", "", trip);
  auto& failed = metrics->counter("catga_sagas_failed_total", "", trip);
  // Counted right after the final state is stored, a moment after wait() may return.
  auto settle = [&](std::uint64_t finished) {
    const auto until = std::chrono::steady_clock::now() + kWait;
    while (completed.value() + compensated.value() + failed.value() < finished &&
           std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  };

  REQUIRE(orch.start(f.saga, "m1", TripData{"m1", "", "", ""}));
  REQUIRE(orch.wait("m1", kWait)->status == catga::SagaStatus::completed);
  settle(1);
  f.world.fail_step = "RentCar";
  REQUIRE(orch.start(f.saga, "m2", TripData{"m2", "", "", ""}));
  REQUIRE(orch.wait("m2", kWait)->status == catga::SagaStatus::compensated);
  settle(2);
  f.world.fail_compensation = true;
  REQUIRE(orch.start(f.saga, "m3", TripData{"m3", "", "", ""}));
  REQUIRE(orch.wait("m3", kWait)->status == catga::SagaStatus::compensation_failed);
  settle(3);
  // Starting an existing id again is no new saga.
  REQUIRE(orch.start(f.saga, "m1", TripData{"m1", "", "", ""}));

  CHECK(started.value() == 3);
  CHECK(completed.value() == 1);
  CHECK(compensated.value() == 1);
  CHECK(failed.value() == 1);
  const auto text = metrics->render_prometheus();
  CHECK(text.find("catga_sagas_started_total{saga=\"trip\"} 3") != std::string::npos);
  CHECK(text.find("m1") == std::string::npos);  // saga ids are never labels
}
