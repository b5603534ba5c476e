// Mechanics of InMemoryTransport: handing items to members, worker threads,
// acks/naks/dead letters, the redelivery timer, stopping.

#include <algorithm>
#include <string>
#include <utility>

#include "catga/handler.hpp"
#include "catga/wire.hpp"
#include "in_memory_core.hpp"

namespace catga::detail {
namespace {

// The member whose handler runs on this thread, to detect a subscription
// stopping itself from its own handler (it cannot wait for itself).
thread_local const Member* t_member = nullptr;

class ItemDelivery final : public Delivery {
 public:
  ItemDelivery(const InMemoryMessage& m, int attempt) noexcept : m_(m), attempt_(attempt) {}
  std::string_view subject() const noexcept override { return m_.subject; }
  std::string_view body() const noexcept override { return m_.body; }
  std::optional<std::string_view> header(std::string_view name) const noexcept override {
    return m_.headers.get(name);
  }
  void for_each_header(FunctionRef<void(std::string_view, std::string_view)> visit) const override {
    for (const auto& [k, v] : m_.headers) visit(k, v);
  }
  int attempt() const noexcept override { return attempt_; }
  std::uint64_t sequence() const noexcept override { return m_.sequence; }

 private:
  const InMemoryMessage& m_;
  int attempt_;
};

// Nothing a handler does may unwind into the worker loop.
Status call_event_handler(Member& m, const QueueItem& item) noexcept {
  ItemDelivery d(*item.message, item.deliveries);
  try {
    if (!m.typed.empty()) {
      for (auto& t : m.typed) {
        if (t.type == item.message->type) return t.handler(d);
      }
      return {};  // not reached: an ordered group is fed only its own types
    }
    return m.on_event(d);
  } catch (...) {
    return error_from_current_exception();
  }
}

std::string call_request_handler(Member& m, const QueueItem& item) noexcept {
  ItemDelivery d(*item.message, item.deliveries);
  try {
    return m.on_request(d);
  } catch (...) {
    try {
      return wire::encode_reply(error_from_current_exception(), nullptr);
    } catch (...) {
      return {};  // the requester reports a malformed reply
    }
  }
}

// The handle returned by subscribe/serve. Holds the core so that stopping
// after the transport is gone is safe (shutdown already stopped the member).
class MemberSubscription final : public Subscription::Impl {
 public:
  MemberSubscription(std::shared_ptr<InMemoryCore> core, std::shared_ptr<Member> member) noexcept
      : core_(std::move(core)), member_(std::move(member)) {}
  ~MemberSubscription() override { MemberSubscription::stop(); }
  void stop() noexcept override {
    if (member_) core_->stop_member(member_);
    member_.reset();
  }

 private:
  std::shared_ptr<InMemoryCore> core_;
  std::shared_ptr<Member> member_;
};

void join_all(std::vector<std::thread>& threads, std::vector<std::thread>* self_out) noexcept {
  for (auto& t : threads) {
    if (!t.joinable()) continue;
    if (t.get_id() == std::this_thread::get_id()) {
      if (self_out != nullptr) {
        self_out->push_back(std::move(t));
      } else {
        t.detach();
      }
    } else {
      t.join();
    }
  }
  threads.clear();
}

}  // namespace

Error closed_error() { return make_error(errc::unavailable, "in-memory transport is shut down"); }

InMemoryCore::InMemoryCore(InMemoryTransportOptions opts) : options(std::move(opts)) {
  timer_thread = std::thread([this] { run_timer(); });
}

InMemoryCore::~InMemoryCore() {
  {
    std::lock_guard lk(mu);
    timer_stop = true;
  }
  timer_cv.notify_all();
  if (timer_thread.joinable()) {
    if (timer_thread.get_id() == std::this_thread::get_id()) {
      timer_thread.detach();
    } else {
      timer_thread.join();
    }
  }
  // Normally empty after shutdown(); a thread left here is the one running
  // this destructor (transport shut down from a handler).
  for (auto& t : orphans) {
    if (t.joinable()) t.detach();
  }
  for (auto& m : members) {
    for (auto& t : m->threads) {
      if (t.joinable()) t.detach();
    }
  }
}

std::string_view InMemoryCore::key_of(const QueueItem& item) noexcept {
  return item.message->headers.get(wire::kOrderingKey).value_or(std::string_view{});
}

std::size_t InMemoryCore::next_ready(const Group& g) const {
  if (!g.ordered) return 0;
  // The oldest item of a key that is not held back. An older item of the
  // same key, if any, would have been found first: keys never overtake.
  for (std::size_t i = 0; i < g.ready.size(); ++i) {
    if (g.busy.find(key_of(g.ready[i])) == g.busy.end()) return i;
  }
  return g.ready.size();
}

void InMemoryCore::release_key(Group& g, const QueueItem& item) {
  if (!g.ordered) return;
  if (auto it = g.busy.find(key_of(item)); it != g.busy.end()) g.busy.erase(it);
}

void InMemoryCore::requeue(Group& g, QueueItem item) {
  if (!g.ordered) {
    g.ready.push_back(std::move(item));
    return;
  }
  // Every later item of its key is still in `ready` (the key was busy), so
  // at the front it runs before them; other keys are not affected.
  release_key(g, item);
  g.ready.push_front(std::move(item));
}

void InMemoryCore::pump(Group& g) {
  while (!g.members.empty()) {
    const std::size_t next = next_ready(g);
    if (next >= g.ready.size()) return;
    const std::size_t n = g.members.size();
    Member* target = nullptr;
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t at = (g.next_member + i) % n;
      if (g.members[at]->idle > 0) {
        target = g.members[at];
        g.next_member = (at + 1) % n;
        break;
      }
    }
    if (target == nullptr) return;  // every member busy; the next free one pumps again
    auto item = g.ready.begin() + static_cast<std::ptrdiff_t>(next);
    if (g.ordered) g.busy.emplace(key_of(*item));
    target->inbox.push_back(std::move(*item));
    g.ready.erase(item);
    --target->idle;
    ++g.in_flight;
    target->cv.notify_one();
  }
}

void InMemoryCore::settle_event() noexcept {
  if (--outstanding == 0) idle_cv.notify_all();
}

void InMemoryCore::finish_event(Group& g, const Member& m, QueueItem item, Status status) {
  --g.in_flight;
  if (status) {
    release_key(g, item);
    ++g.acked;
    settle_event();
    return;
  }
  const Error& error = status.error();
  if (const auto redeliver = m.retry.redeliver_after(item.deliveries, error)) {
    ++g.redelivered;
    // A deferral (someone else holds the claim) is not an attempt of its own.
    if (error.code == errc::deferred && item.deliveries > 0) --item.deliveries;
    const auto delay = *redeliver;
    if (delay <= std::chrono::milliseconds::zero()) {
      requeue(g, std::move(item));
      return;
    }
    // In an ordered group its key stays held back while it waits.
    ++g.delayed;
    auto it = timers.emplace(InMemoryClock::now() + delay, DelayedItem{&g, std::move(item)});
    if (it == timers.begin()) timer_cv.notify_one();  // new earliest deadline
    return;
  }
  ++g.dead_lettered;
  release_key(g, item);  // its key goes on
  add_dead_letter(g, item, error);
  settle_event();
}

void InMemoryCore::add_dead_letter(const Group& g, const QueueItem& item, const Error& error) {
  const InMemoryMessage& original = *item.message;
  DeadLetter d;
  d.sequence = ++last_dead_letter;
  d.type = g.ordered ? original.type : g.type;
  d.group = g.name;
  d.message.subject = wire::dead_letter_subject(options.prefix, d.type);
  d.message.headers = original.headers;
  d.message.headers.set(wire::kError, error.message);
  d.message.headers.set(wire::kErrorCode, error.code);
  d.message.headers.set(wire::kDeliveries, std::to_string(item.deliveries));
  d.message.headers.set(wire::kOriginalSubject, original.subject);
  d.message.headers.set(wire::kOriginalSeq, std::to_string(original.sequence));
  d.message.body = original.body;
  d.error = error;
  d.deliveries = item.deliveries;
  d.original_sequence = original.sequence;
  dead_letters.push_back(std::move(d));
  while (dead_letters.size() > options.max_dead_letters && !dead_letters.empty()) dead_letters.pop_front();
}

void InMemoryCore::finish_request(Group& g, QueueItem& item, std::string reply) {
  --g.in_flight;
  ++g.acked;
  PendingRequest& r = *item.request;
  --r.open_groups;
  if (!r.outcome) {
    r.outcome.emplace(std::move(reply));
    r.cv.notify_all();
  }
}

void InMemoryCore::drop_service_backlog(Group& g) {
  // Nobody is left to answer these; fail them now rather than at the deadline.
  for (auto& item : g.ready) {
    PendingRequest& r = *item.request;
    if (--r.open_groups == 0 && !r.outcome) {
      r.outcome.emplace(make_error(errc::unavailable,
                                   "service '" + g.name + "' stopped before answering '" + g.type + "'", true));
      r.cv.notify_all();
    }
  }
  g.ready.clear();
}

void InMemoryCore::run_worker(const std::shared_ptr<Member>& m) noexcept {
  t_member = m.get();
  std::unique_lock lk(mu);
  for (;;) {
    m->cv.wait(lk, [&] { return m->stopping || !m->inbox.empty(); });
    if (m->stopping) break;  // stop_member already took the inbox back
    QueueItem item = std::move(m->inbox.front());
    m->inbox.pop_front();
    Group& g = *m->group;
    ++item.deliveries;
    ++g.delivered;
    lk.unlock();
    if (g.service) {
      std::string reply = call_request_handler(*m, item);
      lk.lock();
      finish_request(g, item, std::move(reply));
    } else {
      Status status = call_event_handler(*m, item);
      lk.lock();
      finish_event(g, *m, std::move(item), std::move(status));
    }
    ++m->idle;
    pump(g);
  }
  t_member = nullptr;
}

void InMemoryCore::run_timer() noexcept {
  std::unique_lock lk(mu);
  while (!timer_stop) {
    if (timers.empty()) {
      timer_cv.wait(lk);
      continue;
    }
    auto first = timers.begin();
    if (first->first > InMemoryClock::now()) {
      timer_cv.wait_until(lk, first->first);
      continue;
    }
    Group& g = *first->second.group;
    --g.delayed;
    requeue(g, std::move(first->second.item));
    timers.erase(first);
    pump(g);
  }
}

Result<Subscription> InMemoryCore::start_member(std::shared_ptr<Member> m, std::size_t workers, std::string_view what,
                                                const std::function<Group*(Error& error)>& find_group) {
  {
    std::lock_guard lk(mu);
    if (closed) return closed_error();
  }
  m->idle = workers;
  auto self = shared_from_this();
  auto abandon = [&] {
    {
      std::lock_guard lk(mu);
      m->stopping = true;
    }
    m->cv.notify_all();
    join_all(m->threads, nullptr);
  };
  try {
    m->threads.reserve(workers);
    for (std::size_t i = 0; i < workers; ++i) {
      m->threads.emplace_back([self, m] { self->run_worker(m); });
    }
  } catch (...) {
    abandon();
    return make_error(errc::unavailable, std::string(what) + ": cannot start worker threads", true);
  }

  std::unique_lock lk(mu);
  const bool was_closed = closed;
  Error refused = closed_error();
  Group* group = was_closed ? nullptr : find_group(refused);
  if (group == nullptr) {
    lk.unlock();
    abandon();
    return refused;
  }
  m->group = group;
  group->members.push_back(m.get());
  members.push_back(m);
  pump(*group);
  lk.unlock();
  return Subscription(std::make_unique<MemberSubscription>(std::move(self), std::move(m)));
}

Result<Subscription> InMemoryCore::join(bool service, std::string_view type, std::string_view group_name,
                                        std::size_t workers, RetryPolicy retry, DeliveryHandler on_event,
                                        RequestHandler on_request) {
  const std::string what = std::string(service ? "serve" : "subscribe") + " '" + std::string(type) + "'";
  if (type.empty()) return make_error(errc::validation, std::string(service ? "serve" : "subscribe") + ": empty message type");
  if (group_name.empty()) {
    return make_error(errc::validation, what + ": a consumer group (service) name is required");
  }
  if (workers == 0) return make_error(errc::validation, what + ": workers must be at least 1");
  if (service ? !on_request : !on_event) return make_error(errc::validation, what + ": empty handler");

  auto m = std::make_shared<Member>();
  m->on_event = std::move(on_event);
  m->on_request = std::move(on_request);
  m->retry = std::move(retry);
  return start_member(std::move(m), workers, what, [&](Error&) -> Group* {
    auto& topics = service ? services : events;
    auto topic = topics.find(type);
    if (topic == topics.end()) topic = topics.emplace(std::string(type), Topic{}).first;
    auto g = topic->second.groups.find(group_name);
    if (g == topic->second.groups.end()) {
      auto created = std::make_unique<Group>();
      created->type = std::string(type);
      created->name = std::string(group_name);
      created->service = service;
      g = topic->second.groups.emplace(std::string(group_name), std::move(created)).first;
    }
    return g->second.get();
  });
}

Result<Subscription> InMemoryCore::join_ordered(std::string_view group_name, std::size_t workers, RetryPolicy retry,
                                                std::vector<TypeHandler> handlers) {
  const std::string what = "subscribe_ordered '" + std::string(group_name) + "'";
  if (group_name.empty()) return make_error(errc::validation, "subscribe_ordered: a consumer group name is required");
  if (workers == 0) return make_error(errc::validation, what + ": workers must be at least 1");
  if (handlers.empty()) return make_error(errc::validation, what + ": no message types");
  std::vector<std::string> types;
  for (const auto& h : handlers) {
    if (auto v = wire::check_subject(h.type, "message type"); !v) return std::move(v).error();
    if (!h.handler) return make_error(errc::validation, what + ": empty handler for '" + h.type + "'");
    types.push_back(h.type);
  }
  // Named in the subscription's order, as the JetStream transport does.
  std::string joined;
  for (const auto& t : types) joined += (joined.empty() ? "" : ",") + t;
  std::sort(types.begin(), types.end());
  if (std::adjacent_find(types.begin(), types.end()) != types.end()) {
    return make_error(errc::validation, what + ": a message type is named twice");
  }

  auto m = std::make_shared<Member>();
  m->typed = std::move(handlers);
  m->retry = std::move(retry);
  return start_member(std::move(m), workers, what, [&](Error& refused) -> Group* {
    auto found = ordered_groups.find(group_name);
    if (found != ordered_groups.end()) {
      if (found->second->types == types) return found->second.get();
      refused = make_error(errc::validation, what + ": its members must all consume the same types (" +
                                                 found->second->type + "), not " + joined);
      return nullptr;
    }
    auto created = std::make_unique<Group>();
    created->type = joined;
    created->name = std::string(group_name);
    created->ordered = true;
    created->types = types;
    Group* g = created.get();
    ordered_groups.emplace(std::string(group_name), std::move(created));
    for (const auto& t : types) {
      auto topic = events.find(t);
      if (topic == events.end()) topic = events.emplace(t, Topic{}).first;
      topic->second.ordered.push_back(g);
    }
    return g;
  });
}

void InMemoryCore::stop_member(const std::shared_ptr<Member>& m) noexcept {
  std::unique_lock lk(mu);
  if (m->stopping) {
    // Stopped already, or being stopped by another thread: wait for that,
    // unless this is one of its own workers.
    if (t_member != m.get()) m->stopped_cv.wait(lk, [&] { return m->stopped; });
    return;
  }
  m->stopping = true;
  Group& g = *m->group;
  auto pos = std::find(g.members.begin(), g.members.end(), m.get());
  if (pos != g.members.end()) {
    g.members.erase(pos);
    if (g.next_member >= g.members.size()) g.next_member = 0;
  }
  // Items handed over but not started go back to the front of the group,
  // their attempt unchanged: no handler has seen them.
  g.in_flight -= m->inbox.size();
  while (!m->inbox.empty()) {
    release_key(g, m->inbox.back());
    g.ready.push_front(std::move(m->inbox.back()));
    m->inbox.pop_back();
  }
  members.erase(std::remove(members.begin(), members.end(), m), members.end());
  if (g.service && g.members.empty()) drop_service_backlog(g);
  pump(g);
  m->cv.notify_all();
  std::vector<std::thread> threads = std::move(m->threads);
  lk.unlock();

  std::vector<std::thread> self;
  join_all(threads, &self);

  lk.lock();
  for (auto& t : self) orphans.push_back(std::move(t));
  m->stopped = true;
  m->stopped_cv.notify_all();
}

void InMemoryCore::shutdown() noexcept {
  std::lock_guard once(shutdown_mu);
  if (shut_down) return;
  std::vector<std::shared_ptr<Member>> live;
  {
    std::lock_guard lk(mu);
    closed = true;
    live = members;
  }
  for (const auto& m : live) stop_member(m);

  std::vector<std::thread> rest;
  {
    std::lock_guard lk(mu);
    for (PendingRequest* r : waiting_requests) {
      if (!r->outcome) r->outcome.emplace(closed_error());
      r->cv.notify_all();
    }
    timer_stop = true;
    rest = std::move(orphans);
    orphans.clear();
  }
  timer_cv.notify_all();
  if (timer_thread.joinable()) timer_thread.join();
  join_all(rest, nullptr);
  shut_down = true;
}

GroupStats InMemoryCore::stats_of(const Group& g) const {
  GroupStats s;
  s.type = g.type;
  s.group = g.name;
  s.service = g.service;
  s.members = g.members.size();
  s.pending = g.ready.size();
  s.delayed = g.delayed;
  s.in_flight = g.in_flight;
  s.delivered = g.delivered;
  s.acked = g.acked;
  s.redelivered = g.redelivered;
  s.dead_lettered = g.dead_lettered;
  return s;
}

}  // namespace catga::detail
