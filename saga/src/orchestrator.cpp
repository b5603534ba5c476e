#include "catga/saga/orchestrator.hpp"

#include <spdlog/spdlog.h>

#include "catga/pipeline/metrics.hpp"

#include <algorithm>

#include "catga/saga/events.hpp"
#include "catga/wire.hpp"

namespace catga {
namespace {

std::string fnv_hex(std::string_view s) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  char buf[17];
  append_hex_u64(buf, h);
  return std::string(buf, 16);
}

// "<saga>/s<step>/<attempt>" (or /c for compensations): the same saga, step
// and attempt always give the same id, so a resent command is deduplicated.
// Resends whose outcome is unknown keep the attempt (see SagaRecord::attempt).
MessageId step_message_id(const SagaRecord& r, bool compensation) {
  const std::string tail = std::string(compensation ? "/c" : "/s") + std::to_string(r.step) + "/" +
                           std::to_string(r.attempt);
  if (auto id = MessageId::parse(r.id + tail)) return *id;
  // Too long or not printable ASCII: a stable hash of the saga id instead.
  return *MessageId::parse("saga-" + fnv_hex(r.id) + tail);
}

std::chrono::milliseconds doubled(std::chrono::milliseconds first, int attempt) {
  auto d = first;
  for (int i = 1; i < attempt && d < std::chrono::minutes(1); ++i) d *= 2;
  return d;
}

// The wait before the next send: the doubled delay, or longer when the
// failure says when to come back (a deferred duplicate), but at most half
// the saga's lease, so a waiting driver is not taken for a dead one.
std::chrono::milliseconds retry_wait(std::chrono::milliseconds first, int tries, const Error& e,
                                     std::chrono::milliseconds lease) {
  const auto d = std::max(doubled(first, tries), e.retry_after);
  return std::max(std::chrono::milliseconds(1), std::min(d, lease / 2));
}

// Past this many lines, a repeat of the last line (a step resent again and
// again while its service is away) replaces it instead of adding one, so a
// saga that waits long keeps a bounded record.
constexpr std::size_t kHistoryLimit = 64;

void add_history(SagaRecord& r, const SagaType& type, std::string what, std::string error = {}) {
  const int step = r.step;
  if (r.history.size() >= kHistoryLimit && r.history.back().step == step && r.history.back().what == what) {
    r.history.back().error = std::move(error);
    r.history.back().at_ms = unix_ms_now();
    return;
  }
  std::string name = step >= 0 && step < static_cast<int>(type.steps.size()) ? type.steps[step].name : "";
  r.history.push_back({step, std::move(name), std::move(what), std::move(error), unix_ms_now()});
}

std::string describe(const Error& e) { return e.code + ": " + e.message; }

// Whether a failed send leaves it unknown if the step took effect: anything
// retryable (the receiver may have run it and the reply was lost, or may
// still run it), a timeout, `unavailable`, `deferred` or handler exception
// even when not marked retryable, and `no_handler` once an earlier send may
// have reached a handler (its service is gone now, but may have acted first).
// Anything else is a definitive answer: the step did not take effect.
bool outcome_unknown(const Error& e, bool earlier_send_unknown) {
  if (e.retryable) return true;
  if (e.code == errc::timeout || e.code == errc::unavailable || e.code == errc::deferred || e.code == errc::exception) {
    return true;
  }
  return e.code == errc::no_handler && earlier_send_unknown;
}

// Leaves the current step or compensation: the next one starts unsent.
void next_step(SagaRecord& r, int step) {
  r.step = step;
  r.attempt = 0;
  r.tries = 0;
  r.uncertain_since_ms = 0;
}

// Moves on to running step `step` with its first send already counted, so
// the write that records the transition also records the send (one store
// write per step, not two). Recovery then treats that send as possibly made:
// it is resent with the same id, which a receiver that never got it runs
// and one that did answers from its idempotency store.
void next_step_sending(SagaRecord& r, int step, int steps) {
  next_step(r, step);
  if (step < steps) {
    r.attempt = 1;
    r.tries = 1;
  }
}

}  // namespace

SagaOrchestrator::SagaOrchestrator(Mediator& mediator, std::shared_ptr<SagaStore> store, SagaOptions options)
    : mediator_(mediator), store_(std::move(store)), options_(std::move(options)) {
  if (options_.instance_id.empty()) options_.instance_id = "saga-" + MessageId::generate().text().str();
  if (options_.workers == 0) options_.workers = 1;
  // The workers log through spdlog's default logger. Made here, before they
  // start, its lazy creation cannot race between two of them (ThreadSanitizer
  // saw that race: libspdlog's static guard is not instrumented).
  (void)spdlog::default_logger_raw();
  announcer_ = std::thread([this] { announcer_loop(); });
  announcer_id_ = announcer_.get_id();  // before any worker can announce
  for (std::size_t i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { worker_loop(); });
  if (options_.recovery_interval.count() > 0) recovery_ = std::thread([this] { recovery_loop(); });
}

SagaOrchestrator::~SagaOrchestrator() { stop(); }

void SagaOrchestrator::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
  }
  work_cv_.notify_all();
  stop_cv_.notify_all();
  final_cv_.notify_all();
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
  workers_.clear();
  if (recovery_.joinable()) recovery_.join();
  {
    std::lock_guard lock(announce_mutex_);
    announcer_stopping_ = true;
  }
  announce_cv_.notify_all();
  if (announcer_.joinable()) announcer_.join();  // after publishing what waits
}

void SagaOrchestrator::announce(std::function<void()> publish) {
  if (std::this_thread::get_id() == announcer_id_) {
    // From a local handler of a lifecycle event (one that starts a saga):
    // waiting for room in the queue here would wait for ourselves.
    publish();
    return;
  }
  {
    std::unique_lock lock(announce_mutex_);
    announce_cv_.wait(lock, [&] { return announcements_.size() < kMaxAnnouncements || announcer_stopping_; });
    if (announcer_stopping_) {
      lock.unlock();
      publish();  // stop() has begun: nobody may be left to publish it
      return;
    }
    announcements_.push_back(std::move(publish));
  }
  announce_cv_.notify_all();
}

void SagaOrchestrator::announcer_loop() {
  std::unique_lock lock(announce_mutex_);
  for (;;) {
    announce_cv_.wait(lock, [&] { return !announcements_.empty() || announcer_stopping_; });
    if (announcements_.empty()) return;  // stopping, nothing left
    auto next = std::move(announcements_.front());
    announcements_.pop_front();
    lock.unlock();
    announce_cv_.notify_all();  // room for a waiting announce()
    next();
    lock.lock();
  }
}

void SagaOrchestrator::add_type(SagaType type) {
  if (type.steps.empty()) throw Exception(make_error(errc::internal, "saga '" + type.name + "' has no steps"));
  std::string name = type.name;
  if (!types_.emplace(name, std::move(type)).second) {
    throw Exception(make_error(errc::duplicate_handler, "saga type '" + name + "' is already registered"));
  }
  if (auto& m = options_.metrics) {
    const MetricLabels labels{{"saga", name}};
    meters_[name] = Meters{
        &m->counter("catga_sagas_started_total", "Sagas started by this instance, by saga type.", labels),
        &m->counter("catga_sagas_completed_total", "Sagas this instance finished with every step done.", labels),
        &m->counter("catga_sagas_compensated_total",
                    "Sagas this instance finished by compensating (a step failed; what was done is undone).", labels),
        &m->counter("catga_sagas_failed_total",
                    "Sagas whose compensation failed: they need an operator (SagaFailed).", labels)};
  }
}

void SagaOrchestrator::count(const SagaRecord& r) noexcept {
  const auto m = meters_.find(r.type);
  if (m == meters_.end()) return;
  switch (r.status) {
    case SagaStatus::running:
      m->second.started->inc();
      break;
    case SagaStatus::completed:
      m->second.completed->inc();
      break;
    case SagaStatus::compensated:
      m->second.compensated->inc();
      break;
    case SagaStatus::compensation_failed:
      m->second.failed->inc();
      break;
    case SagaStatus::compensating:
      break;
  }
}

Result<SagaRecord> SagaOrchestrator::start_json(std::string_view type, std::string id, nlohmann::json data) {
  auto t = types_.find(type);
  if (t == types_.end()) return make_error(errc::unknown_type, "no saga type '" + std::string(type) + "'");
  if (id.empty() || id.size() > 200 ||
      id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=") != std::string::npos) {
    // Saga ids are keys of the store (JetStream KV keys) and parts of command ids.
    return make_error(errc::validation, "saga id '" + id + "' must be 1-200 characters of [A-Za-z0-9_=-]");
  }
  const Context ctx = Context::next();
  SagaRecord r;
  r.id = std::move(id);
  r.type = std::string(type);
  r.data = std::move(data);
  r.correlation_id = ctx.correlation_id.text().str();
  // The steps are children of the span that started the saga (the handler
  // running now), not of this context's own span, which no dispatch records.
  TraceContext started_by = ctx.trace;
  if (started_by.parent_span_id != 0) started_by.span_id = started_by.parent_span_id;
  r.traceparent = started_by.traceparent().str();
  if (auto state = ctx.headers.get(wire::kTracestate)) r.tracestate = std::string(*state);
  r.owner = options_.instance_id;
  next_step_sending(r, 0, static_cast<int>(t->second.steps.size()));
  r.created_ms = r.updated_ms = unix_ms_now();
  r.lease_until_ms = r.created_ms + options_.lease.count();
  // Marked scheduled before it exists, so a recovery pass that finds it
  // before we queue it leaves it to us: driven twice, the copy below (which
  // records the first step as sent) would send that step twice.
  bool reserved = false;
  {
    std::lock_guard lock(mutex_);
    reserved = !stopping_ && scheduled_.insert(r.id).second;
  }
  auto unreserve = [&] {
    std::lock_guard lock(mutex_);
    scheduled_.erase(r.id);
  };
  auto created = store_->create(r);
  if (!created) {
    if (reserved) unreserve();
    if (created.error().code != errc::conflict) return std::move(created).error();
    auto existing = store_->load(r.id);  // idempotent start: the saga already exists
    if (!existing) return std::move(existing).error();
    return existing->record;
  }
  publish_lifecycle(r, t->second);
  if (!reserved) {
    schedule(r.id);  // stopping, or driven already (by an id reused meanwhile): read back
    return r;
  }
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      scheduled_.erase(r.id);  // left to recovery
      return r;
    }
    started_.insert_or_assign(r.id, StoredSaga{r, *created});
    queue_.push_back(r.id);
  }
  work_cv_.notify_one();
  return r;
}

Result<SagaRecord> SagaOrchestrator::get(std::string_view id) const {
  auto loaded = store_->load(id);
  if (!loaded) return std::move(loaded).error();
  return std::move(loaded->record);
}

Result<SagaRecord> SagaOrchestrator::wait(std::string_view id, std::chrono::milliseconds timeout) const {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto r = get(id);
    if (!r || is_final(r->status) || std::chrono::steady_clock::now() >= until) return r;
    // Woken by our own transitions; polling also sees other instances' work.
    std::unique_lock lock(mutex_);
    final_cv_.wait_for(lock, std::chrono::milliseconds(20));
  }
}

Result<std::size_t> SagaOrchestrator::recover() {
  // Through the store's index of active sagas: finished ones are never read.
  auto active = store_->load_active();
  if (!active) return std::move(active).error();
  std::size_t n = 0;
  const auto now = unix_ms_now();
  for (const auto& s : *active) {
    const auto& r = s.record;
    if (is_final(r.status) || types_.find(r.type) == types_.end()) continue;
    if (r.owner == options_.instance_id || r.owner.empty() || r.lease_until_ms <= now) {
      schedule(r.id);
      ++n;
    }
  }
  return n;
}

void SagaOrchestrator::schedule(const std::string& id) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || !scheduled_.insert(id).second) return;
    queue_.push_back(id);
  }
  work_cv_.notify_one();
}

void SagaOrchestrator::worker_loop() {
  for (;;) {
    std::string id;
    {
      std::unique_lock lock(mutex_);
      work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      id = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      drive(id);
    } catch (const std::exception& e) {
      spdlog::error("saga {}: driver failed: {}", id, e.what());
    }
    {
      std::lock_guard lock(mutex_);
      scheduled_.erase(id);
    }
    final_cv_.notify_all();
  }
}

void SagaOrchestrator::recovery_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, options_.recovery_interval, [&] { return stopping_; });
    if (stopping_) return;
    lock.unlock();
    if (auto r = recover(); !r) spdlog::warn("saga recovery: {}", r.error().message);
    lock.lock();
  }
}

void SagaOrchestrator::drive(const std::string& id) {
  std::optional<StoredSaga> started;
  {
    std::lock_guard lock(mutex_);
    if (auto it = started_.find(id); it != started_.end()) {
      started = std::move(it->second);
      started_.erase(it);
    }
  }
  if (started) {
    // Just stored by start() with this instance as owner and the first
    // step's send recorded (no store write needed before it): what the
    // store holds at that revision.
    for (;;) {
      {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
      }
      if (drive_once(*started, types_.at(started->record.type)) == Drive::done) return;
    }
  }
  auto loaded = store_->load(id);
  if (!loaded) {
    spdlog::warn("saga {}: cannot load: {}", id, loaded.error().message);
    return;
  }
  StoredSaga s = std::move(*loaded);
  if (is_final(s.record.status)) return;
  auto t = types_.find(s.record.type);
  if (t == types_.end()) {
    spdlog::error("saga {}: unknown saga type '{}'", id, s.record.type);
    return;
  }
  if (s.record.owner != options_.instance_id && s.record.lease_until_ms > unix_ms_now()) return;
  if (s.record.owner != options_.instance_id) {
    spdlog::info("saga {}: taking over from {}", id, s.record.owner);
  }
  s.record.owner = options_.instance_id;
  if (s.record.attempt > 0 && s.record.uncertain_since_ms == 0) {
    // A send (of a step or a compensation) was in flight when its driver
    // stopped: it may have taken effect. Resent with the same id below; a
    // step is compensated too if the saga gives up on it or it then fails.
    s.record.uncertain_since_ms = unix_ms_now();
  }
  if (!persist(s)) return;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
    if (drive_once(s, t->second) == Drive::done) return;
  }
}

bool SagaOrchestrator::persist(StoredSaga& s) {
  auto& r = s.record;
  r.updated_ms = unix_ms_now();
  // Safety does not depend on the lease (revision checks and command ids
  // do); it only keeps a live driver from being taken over needlessly.
  r.lease_until_ms = r.updated_ms + options_.lease.count();
  auto rev = store_->update(r, s.revision);
  if (!rev) {
    spdlog::warn("saga {}: not persisted ({}); another instance drives it", r.id, rev.error().message);
    return false;
  }
  s.revision = *rev;
  if (is_final(r.status)) final_cv_.notify_all();
  if (after_persist && !after_persist(r)) return false;
  return true;
}

SagaOrchestrator::Drive SagaOrchestrator::drive_once(StoredSaga& s, const SagaType& type) {
  auto& r = s.record;
  const int n = static_cast<int>(type.steps.size());

  if (r.status == SagaStatus::running) {
    if (r.step >= n) {
      r.status = SagaStatus::completed;
      if (persist(s)) publish_lifecycle(r, type);
      return Drive::done;
    }
    const SagaStep& step = type.steps[r.step];
    if (r.attempt == 0) {
      // Recorded before sending: every later send of this step reuses this id.
      // (A step reached by completing the one before, or a new saga's first
      // step, has it recorded already: next_step_sending.)
      r.attempt = 1;
      r.tries = 1;
      r.uncertain_since_ms = 0;
      if (!persist(s)) return Drive::done;
    }
    nlohmann::json data = r.data;
    Status st = traced_step(r, step, false,
                            [&](Context ctx) { return step.action(mediator_, data, std::move(ctx)); });
    if (st) {
      r.data = std::move(data);
      add_history(r, type, "completed");
      const int done_step = r.step;
      next_step_sending(r, r.step + 1, n);
      const bool last = r.step >= n;
      if (last) r.status = SagaStatus::completed;  // in the same write
      if (!persist(s)) return Drive::done;
      Context ctx = step_context(r, false, std::chrono::milliseconds(0));
      ctx.deadline = Context::kNoDeadline;
      ctx.message_id = MessageId::generate();
      announce([this, ctx = std::move(ctx), e = SagaStepCompleted{r.id, r.type, done_step, step.name}]() mutable {
        if (auto p = mediator_.publish(e, ctx); !p) {
          spdlog::warn("saga {}: SagaStepCompleted not published: {}", e.saga_id, p.error().message);
        }
      });
      if (last) {
        publish_lifecycle(r, type);
        return Drive::done;
      }
      return Drive::again;
    }
    const Error& err = st.error();
    const bool was_uncertain = r.uncertain_since_ms != 0;
    if (outcome_unknown(err, was_uncertain)) {
      const auto now = unix_ms_now();
      if (!was_uncertain) r.uncertain_since_ms = now;
      const bool sends_left = r.tries < step.max_attempts;
      const bool time_left = now - r.uncertain_since_ms < step.resolve_uncertain_for.count();
      // A step without compensation cannot be undone. Once a send of it may
      // have taken effect, compensating the steps before it could leave it
      // applied over undone work (an order confirmed, its payment refunded),
      // so it is resent until its outcome is known, however long that takes.
      const bool undoable = static_cast<bool>(step.compensation);
      if (sends_left || time_left || !undoable) {
        // Resent with the same id: a receiver that applied it answers from
        // its idempotency store; one that never got it runs it now.
        add_history(r, type, "retry", describe(err));
        const auto delay = retry_wait(step.retry_delay, r.tries, err, options_.lease);
        ++r.tries;
        if (!persist(s)) return Drive::done;
        pause(delay);
        return Drive::again;
      }
      // Given up while it may have taken effect: undo it too, then the
      // steps before it (compensations tolerate "nothing to undo").
      const std::string why = "outcome unknown after " + std::to_string(r.tries) + " sends: " + describe(err);
      add_history(r, type, "failed", why);
      r.error = step.name + ": " + why;
      r.status = SagaStatus::compensating;
      next_step(r, r.step);
      if (!persist(s)) return Drive::done;
      return Drive::again;
    }
    add_history(r, type, "failed", describe(err));
    r.error = step.name + ": " + describe(err);
    r.status = SagaStatus::compensating;
    // A definitive failure: the step did not take effect, unless an earlier
    // send's outcome was unknown; then it is compensated too, rather than
    // trusting that the answer covers every earlier send.
    next_step(r, was_uncertain ? r.step : r.step - 1);
    if (!persist(s)) return Drive::done;
    return Drive::again;
  }

  if (r.status == SagaStatus::compensating) {
    if (r.step < 0) {
      r.status = SagaStatus::compensated;
      r.step = 0;
      if (persist(s)) publish_lifecycle(r, type);
      return Drive::done;
    }
    const SagaStep& step = type.steps[r.step];
    if (!step.compensation) {
      next_step(r, r.step - 1);
      return persist(s) ? Drive::again : Drive::done;
    }
    if (r.attempt == 0) {
      r.attempt = 1;  // resends of this compensation reuse this id (see below)
      r.tries = 1;
      r.uncertain_since_ms = 0;
      if (!persist(s)) return Drive::done;
    }
    nlohmann::json data = r.data;
    Status st = traced_step(r, step, true,
                            [&](Context ctx) { return step.compensation(mediator_, data, std::move(ctx)); });
    if (st) {
      add_history(r, type, "compensated");
      next_step(r, r.step - 1);
      return persist(s) ? Drive::again : Drive::done;
    }
    const Error& err = st.error();
    const bool unknown = outcome_unknown(err, r.uncertain_since_ms != 0);
    if (r.tries < type.compensation_attempts) {
      add_history(r, type, "compensation_retry", describe(err));
      const auto delay = retry_wait(type.compensation_delay, r.tries, err, options_.lease);
      ++r.tries;
      if (unknown) {
        // It may have taken effect: the same id again, so it is not applied twice.
        if (r.uncertain_since_ms == 0) r.uncertain_since_ms = unix_ms_now();
      } else {
        // The receiver's answer for this id (it did not take effect), which
        // it may remember: the next send gets a new id, so it runs again.
        ++r.attempt;
        r.uncertain_since_ms = 0;
      }
      if (!persist(s)) return Drive::done;
      pause(delay);
      return Drive::again;
    }
    add_history(r, type, "compensation_failed", describe(err));
    r.error += "; compensation of " + step.name + " failed: " + describe(err);
    r.status = SagaStatus::compensation_failed;
    if (persist(s)) publish_lifecycle(r, type);
    return Drive::done;
  }
  return Drive::done;
}

Status SagaOrchestrator::traced_step(const SagaRecord& r, const SagaStep& step, bool compensation,
                                     FunctionRef<Status(Context)> run) {
  Context ctx = step_context(r, compensation, step.timeout);
  SpanSink* sink = mediator_.span_sink();
  if (sink == nullptr) [[likely]] return run(std::move(ctx));
  // A "saga_step" span between the saga's trace and the step's command: the
  // step's context becomes its child.
  Context span_ctx = ctx;
  detail::SpanScope span(sink, span_ctx, SpanKind::internal, "saga_step", r.type);
  if (span.recording()) {
    Span& s = span.span();
    s.destination = step.name;
    s.saga_type = r.type;
    s.saga_id = r.id;
    s.saga_step = step.name;
    s.compensation = compensation;
  }
  ctx.trace = span_ctx.trace;
  ctx.trace.parent_span_id = span_ctx.trace.span_id;
  ctx.trace.span_id = detail::new_span_id();
  Status st = run(std::move(ctx));
  span.end(st);
  return st;
}

Context SagaOrchestrator::step_context(const SagaRecord& r, bool compensation,
                                       std::chrono::milliseconds timeout) const {
  Context ctx = Context::root();
  ctx.message_id = step_message_id(r, compensation);
  if (auto c = MessageId::parse(r.correlation_id)) ctx.correlation_id = *c;
  if (auto tc = TraceContext::parse(r.traceparent)) ctx.trace = *tc;
  if (!r.tracestate.empty()) ctx.headers.set(wire::kTracestate, r.tracestate);
  ctx.headers.set(kSagaIdHeader, r.id);
  if (compensation) ctx.headers.set(kSagaReasonHeader, r.error);
  if (timeout.count() > 0) ctx.deadline = Context::Clock::now() + timeout;
  return ctx;
}

void SagaOrchestrator::pause(std::chrono::milliseconds d) {
  if (options_.sleep) {
    options_.sleep(d);
    return;
  }
  std::unique_lock lock(mutex_);
  stop_cv_.wait_for(lock, d, [&] { return stopping_; });
}

void SagaOrchestrator::publish_lifecycle(const SagaRecord& r, const SagaType& type) {
  count(r);
  Context ctx = step_context(r, false, std::chrono::milliseconds(0));
  ctx.message_id = MessageId::generate();
  // Lifecycle events inform; failing to publish one must not fail the saga.
  auto send = [this](const auto& event, Context& c) {
    if (auto st = mediator_.publish(event, c); !st) {
      spdlog::warn("saga {}: lifecycle event not published: {}", event.saga_id, st.error().message);
    }
  };
  switch (r.status) {
    case SagaStatus::running:
      announce([send, c = std::move(ctx), e = SagaStarted{r.id, r.type}]() mutable { send(e, c); });
      break;
    case SagaStatus::completed:
      announce([send, c = std::move(ctx), e = SagaCompleted{r.id, r.type}]() mutable { send(e, c); });
      break;
    case SagaStatus::compensated:
      announce([send, c = std::move(ctx), e = SagaCompensated{r.id, r.type, r.error}]() mutable { send(e, c); });
      break;
    case SagaStatus::compensation_failed: {
      const int step = r.step;
      std::string name = step >= 0 && step < static_cast<int>(type.steps.size()) ? type.steps[step].name : "";
      spdlog::error("saga {} ({}) needs an operator: {}", r.id, r.type, r.error);
      announce([send, c = std::move(ctx), e = SagaFailed{r.id, r.type, step, std::move(name), r.error}]() mutable {
        send(e, c);
      });
      break;
    }
    case SagaStatus::compensating:
      break;
  }
}

}  // namespace catga
