#pragma once
// SagaOrchestrator: drives sagas step by step, persisting after every step.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "catga/mediator.hpp"
#include "catga/saga/definition.hpp"
#include "catga/saga/record.hpp"
#include "catga/saga/store.hpp"

namespace catga {

class Metrics;  // catga/pipeline/metrics.hpp
class MetricCounter;

struct SagaOptions {
  // Who drives: keep it stable across restarts of one instance (e.g. the pod
  // name) so a restarted instance resumes its sagas at once; default random.
  std::string instance_id;
  std::size_t workers = 4;
  // A saga owned by an instance that stopped renewing for this long may be
  // taken over by another instance. Make it longer than the slowest step:
  // a takeover during a step resends that step (same id, deduplicated).
  std::chrono::milliseconds lease{std::chrono::seconds(30)};
  // How often to look for orphaned sagas (0 = only when recover() is called).
  std::chrono::milliseconds recovery_interval{std::chrono::seconds(0)};
  // Waits between retries; replaceable so tests do not sleep.
  std::function<void(std::chrono::milliseconds)> sleep;
  // Counts sagas started, completed, compensated and failed (compensation
  // failed) by saga type in this registry: catga_sagas_<what>_total{saga}
  // (docs/operations.md, "Library metrics"). Null, the default: nothing counted.
  std::shared_ptr<Metrics> metrics;
};

// Runs sagas on a pool of worker threads. Each transition (attempt started,
// step done, compensation done, final status) is written to the SagaStore
// with a revision check before the next command is sent, so:
// - a crashed orchestrator's sagas resume where they were (recover());
// - two orchestrators never drive one saga at once (the loser of a write
//   stops driving it);
// - a resumed step resends the same command id (saga id + step + attempt),
//   which the receiving service deduplicates;
// - a step whose outcome is unknown (timeout, lost reply, its service gone
//   mid-step) is resent with that same id until the outcome is known or its
//   policy gives up; then it is compensated along with the steps before it
//   (see SagaStep). Retries wait in the worker, at most lease / 2 at a time.
//
//   catga::SagaOrchestrator orch(mediator, std::make_shared<catga::InMemorySagaStore>());
//   orch.add(order_saga);
//   orch.start(order_saga, "order-42", OrderData{...});
//   auto final_state = orch.wait("order-42", std::chrono::seconds(10));
class SagaOrchestrator {
 public:
  SagaOrchestrator(Mediator& mediator, std::shared_ptr<SagaStore> store, SagaOptions options = {});
  ~SagaOrchestrator();
  SagaOrchestrator(const SagaOrchestrator&) = delete;
  SagaOrchestrator& operator=(const SagaOrchestrator&) = delete;

  // Registers a saga type (before start/recover).
  template <class Data>
  void add(const SagaDefinition<Data>& definition) {
    add_type(definition.type());
  }
  void add_type(SagaType type);

  // Starts saga `id` with `data`. Starting an id that exists returns the
  // existing record instead of a second saga (idempotent start).
  template <class Data>
  Result<SagaRecord> start(const SagaDefinition<Data>& definition, std::string id, const Data& data) {
    return start_json(definition.name(), std::move(id), nlohmann::json(data));
  }
  Result<SagaRecord> start_json(std::string_view type, std::string id, nlohmann::json data);

  Result<SagaRecord> get(std::string_view id) const;
  // Waits until saga `id` is final (or `timeout`; then returns its current state).
  Result<SagaRecord> wait(std::string_view id, std::chrono::milliseconds timeout) const;
  // Schedules every active saga this instance may drive (its own, or with an
  // expired lease), found through the store's index of active sagas: the
  // cost does not grow with finished sagas. Returns how many were scheduled.
  Result<std::size_t> recover();
  // Stops the workers after the steps in flight; sagas stay persisted.
  void stop();

  const std::string& instance_id() const noexcept { return options_.instance_id; }

  // Test hook: called after each persisted transition; returning false makes
  // this orchestrator drop the saga on the spot, as if the process died.
  std::function<bool(const SagaRecord&)> after_persist;

 private:
  enum class Drive { again, done };
  void worker_loop();
  void recovery_loop();
  // Queues a saga to be driven (read from the store) unless it is queued or
  // being driven. start_json() queues the sagas it creates itself, with the
  // record it stored (started_), so their drivers read nothing back.
  void schedule(const std::string& id);
  void drive(const std::string& id);
  Drive drive_once(StoredSaga& stored, const SagaType& type);
  bool persist(StoredSaga& stored);
  Context step_context(const SagaRecord& r, bool compensation, std::chrono::milliseconds timeout) const;
  // Runs a step's action or compensation with its context, inside a
  // "saga_step" span when the mediator has a span sink.
  Status traced_step(const SagaRecord& r, const SagaStep& step, bool compensation, FunctionRef<Status(Context)> run);
  void pause(std::chrono::milliseconds d);
  void publish_lifecycle(const SagaRecord& r, const SagaType& type);
  // Lifecycle events are published by the announcer thread, in the order of
  // the transitions they report (each after its transition was stored), so
  // a saga's driver never waits for them. At most kMaxAnnouncements wait;
  // beyond that announce() waits for room. stop() publishes what waits.
  void announce(std::function<void()> publish);
  void announcer_loop();

  Mediator& mediator_;
  std::shared_ptr<SagaStore> store_;
  SagaOptions options_;
  std::map<std::string, SagaType, std::less<>> types_;
  // By saga type, made by add_type() when options_.metrics is set.
  struct Meters {
    MetricCounter* started = nullptr;
    MetricCounter* completed = nullptr;
    MetricCounter* compensated = nullptr;
    MetricCounter* failed = nullptr;
  };
  std::map<std::string, Meters, std::less<>> meters_;
  void count(const SagaRecord& r) noexcept;

  mutable std::mutex mutex_;
  // Only idle workers wait on work_cv_, all for the same predicate, so the
  // notify_one of schedule() always reaches a thread that takes the saga.
  // pause() and the recovery loop wait on stop_cv_: sharing one variable let
  // them swallow a schedule's wake-up while every worker slept (issue 19).
  std::condition_variable work_cv_;
  std::condition_variable stop_cv_;
  mutable std::condition_variable final_cv_;
  std::deque<std::string> queue_;
  std::set<std::string, std::less<>> scheduled_;  // queued or being driven
  std::map<std::string, StoredSaga, std::less<>> started_;  // see schedule()
  bool stopping_ = false;
  std::vector<std::thread> workers_;
  std::thread recovery_;

  static constexpr std::size_t kMaxAnnouncements = 4096;
  std::mutex announce_mutex_;
  std::condition_variable announce_cv_;
  std::deque<std::function<void()>> announcements_;
  bool announcer_stopping_ = false;
  std::thread announcer_;
  std::thread::id announcer_id_;  // set once, before the workers start
};

}  // namespace catga
