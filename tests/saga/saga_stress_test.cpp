// Orchestrator scheduling under stress: every scheduled saga is driven,
// however the schedules interleave with workers pausing between retries and
// with recovery passes (issue 19: a wake-up meant for an idle worker used to
// be taken by a pausing worker or the recovery thread, leaving the saga
// queued with every worker asleep).
#include <doctest/doctest.h>

#include <atomic>
#include <catga/saga/orchestrator.hpp>
#include <chrono>
#include <string>
#include <thread>

namespace saga_stress_test {

struct Work {
  std::string id;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Work, id)

struct Touch { std::string id; };
CATGA_COMMAND(Touch, void, id)
struct Stall { std::string id; };
CATGA_COMMAND(Stall, void, id)

}  // namespace saga_stress_test

using namespace saga_stress_test;

TEST_CASE("no lost wake-up: thousands of schedules with workers pausing and recovery running concurrently") {
  catga::Mediator mediator;
  std::atomic<int> touched{0};
  mediator.handle<Touch>([&](const Touch&, catga::Context&) -> catga::Status {
    ++touched;
    return {};
  });
  // A step that always fails retryably with a long retry delay: the worker
  // driving it spends the test in pause(), waiting until stop().
  mediator.handle<Stall>([](const Stall&, catga::Context&) -> catga::Status {
    return catga::make_error("busy", "try again much later", true);
  });
  auto quick = catga::SagaDefinition<Work>("quick").step<Touch>("touch", [](const Work& w) { return Touch{w.id}; });
  auto stalled = catga::SagaDefinition<Work>("stalled")
                     .step<Stall>("stall", [](const Work& w) { return Stall{w.id}; })
                     .attempts(1000, std::chrono::minutes(10));

  catga::SagaOptions o;
  o.instance_id = "stress";
  o.workers = 4;
  o.recovery_interval = std::chrono::milliseconds(2);  // the recovery thread is almost always waiting
  catga::SagaOrchestrator orch(mediator, std::make_shared<catga::InMemorySagaStore>(), o);
  orch.add(quick);
  orch.add(stalled);

  // Two of the four workers pause for the whole test; two stay free.
  REQUIRE(orch.start(stalled, "stalled-1", Work{"stalled-1"}));
  REQUIRE(orch.start(stalled, "stalled-2", Work{"stalled-2"}));
  auto paused = [&](const char* id) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < until) {
      auto r = orch.get(id);
      if (r && !r->history.empty() && r->history.back().what == "retry") return true;  // failed once, now waiting
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  };
  REQUIRE(paused("stalled-1"));
  REQUIRE(paused("stalled-2"));

  // Recovery passes from another thread too, as an operator's recover() would.
  std::atomic<bool> done{false};
  std::thread recoverer([&] {
    while (!done) {
      (void)orch.recover();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });

  // One saga at a time: nothing but its own schedule can wake a worker for
  // it, so a lost wake-up leaves it queued until the deadline.
  constexpr int kSagas = 3000;
  int completed = 0;
  int stuck = 0;
  for (int i = 0; i < kSagas && stuck < 3; ++i) {
    const std::string id = "quick-" + std::to_string(i);
    REQUIRE(orch.start(quick, id, Work{id}));
    auto r = orch.wait(id, std::chrono::seconds(2));
    REQUIRE(r);
    if (r->status == catga::SagaStatus::completed) {
      ++completed;
    } else {
      ++stuck;
      MESSAGE("saga " << id << " still " << catga::to_string(r->status) << " at step " << r->step
                      << " after 2 s (scheduled, never driven)");
    }
  }
  done = true;
  recoverer.join();
  CHECK(stuck == 0);
  CHECK(completed == kSagas);
  CHECK(touched.load() == completed);
  // The paused workers are still paused; stop() ends their waits at once.
  const auto before_stop = std::chrono::steady_clock::now();
  orch.stop();
  CHECK(std::chrono::steady_clock::now() - before_stop < std::chrono::seconds(5));
}
