// InMemoryTransport: encoding messages for the wire and the public API over
// the shared core (in_memory_core.cpp).

#include <algorithm>
#include <string>
#include <utility>

#include "catga/transport/in_memory.hpp"
#include "catga/wire.hpp"
#include "in_memory_core.hpp"

namespace catga {
namespace {

using detail::InMemoryClock;
using detail::InMemoryMessage;

std::shared_ptr<InMemoryMessage> encode(std::string subject, const OutboundMessage& m) {
  auto stored = std::make_shared<InMemoryMessage>();
  stored->subject = std::move(subject);
  wire::write_headers(
      m.context, m.info.name, [&](std::string_view k, std::string_view v) { stored->headers.set(k, v); },
      wire::deadline_travels(m.info.kind), m.info.version);
  stored->body = m.body;
  return stored;
}

Error full_error(const detail::Group& g, std::size_t max) {
  return make_error(errc::unavailable,
                    std::string(g.service ? "service '" : "consumer group '") + g.name + "' of '" + g.type + "' holds " +
                        std::to_string(g.unfinished()) + " unfinished messages (max_pending " + std::to_string(max) + ")",
                    true);
}

Error overloaded_error(const detail::Group& g, const InMemoryTransportOptions& o) {
  return make_error(errc::overloaded,
                    "service '" + g.name + "' already holds " + std::to_string(g.unfinished()) + " requests of '" +
                        g.type + "' (serve_max_in_flight " + std::to_string(o.serve_bound()) +
                        " per member); try again later",
                    true);
}

// The DLQ annotations, removed again when a dead letter is replayed.
constexpr std::string_view kDeadLetterHeaders[] = {wire::kError, wire::kErrorCode, wire::kDeliveries,
                                                   wire::kOriginalSubject, wire::kOriginalSeq};

}  // namespace

namespace detail {

Status InMemoryCore::store_event(std::string_view type, std::shared_ptr<InMemoryMessage> message) {
  std::lock_guard lk(mu);
  if (closed) return closed_error();
  auto topic = events.find(type);
  if (topic == events.end()) topic = events.emplace(std::string(type), Topic{}).first;
  // All groups or none: check every queue before storing in any.
  for (const auto& [name, g] : topic->second.groups) {
    if (g->unfinished() >= options.max_pending) return full_error(*g, options.max_pending);
  }
  for (const Group* g : topic->second.ordered) {
    if (g->unfinished() >= options.max_pending) return full_error(*g, options.max_pending);
  }
  message->sequence = ++topic->second.last_sequence;
  message->type = std::string(type);
  std::shared_ptr<const InMemoryMessage> shared = std::move(message);
  auto store_in = [&](Group& g) {
    g.ready.push_back(QueueItem{shared, 0, nullptr});
    ++outstanding;
    pump(g);
  };
  for (auto& [name, g] : topic->second.groups) store_in(*g);
  for (Group* g : topic->second.ordered) store_in(*g);
  return {};
}

Result<std::string> InMemoryCore::send_request(std::string_view type, std::shared_ptr<InMemoryMessage> message,
                                               InMemoryClock::time_point deadline) {
  std::unique_lock lk(mu);
  if (closed) return closed_error();
  std::vector<Group*> targets;
  if (auto topic = services.find(type); topic != services.end()) {
    for (auto& [name, g] : topic->second.groups) {
      if (!g->members.empty()) targets.push_back(g.get());
    }
  }
  if (targets.empty()) {
    return make_error(errc::no_handler, "no service serves '" + std::string(type) + "' (subject '" +
                                            message->subject + "')");
  }
  if (InMemoryClock::now() >= deadline) {
    return make_error(errc::timeout, "deadline of '" + std::string(type) + "' passed before it was sent", true);
  }
  for (const Group* g : targets) {
    if (g->unfinished() >= options.serve_bound() * g->members.size()) return overloaded_error(*g, options);
    if (g->unfinished() >= options.max_pending) return full_error(*g, options.max_pending);
  }
  auto pending = std::make_shared<PendingRequest>();
  std::shared_ptr<const InMemoryMessage> shared = std::move(message);
  for (Group* g : targets) {
    g->ready.push_back(QueueItem{shared, 0, pending});
    ++pending->open_groups;
    pump(*g);
  }
  waiting_requests.push_back(pending.get());
  const bool answered = pending->cv.wait_until(lk, deadline, [&] { return pending->outcome.has_value(); });
  waiting_requests.erase(std::find(waiting_requests.begin(), waiting_requests.end(), pending.get()));
  if (!answered) {
    // A late reply finds the outcome set and is dropped.
    pending->outcome.emplace(make_error(errc::cancelled, "requester gave up"));
    return make_error(errc::timeout, "no reply to '" + std::string(type) + "' before the deadline", true);
  }
  return std::move(*pending->outcome);
}

}  // namespace detail

InMemoryTransport::InMemoryTransport(InMemoryTransportOptions options)
    : core_(std::make_shared<detail::InMemoryCore>(std::move(options))) {}

InMemoryTransport::~InMemoryTransport() { shutdown(); }

const InMemoryTransportOptions& InMemoryTransport::options() const noexcept { return core_->options; }

void InMemoryTransport::shutdown() noexcept { core_->shutdown(); }

Status InMemoryTransport::publish(const OutboundMessage& message) {
  // QoS is not consulted: in memory, at_most_once costs nothing more than
  // at_least_once, and losing messages on purpose would help nobody.
  // Subjects are checked as on NATS, so a bad type fails here first.
  if (auto v = wire::check_subject(message.info.name, "message type"); !v) return v;
  return core_->store_event(message.info.name,
                            encode(wire::event_subject(core_->options.prefix, message.info.name), message));
}

Status InMemoryTransport::publish_raw(std::string_view subject, const Headers& headers, std::string_view body) {
  const std::string& prefix = core_->options.prefix;
  const std::string_view kind = ".evt.";
  const bool ok = subject.size() > prefix.size() + kind.size() && subject.substr(0, prefix.size()) == prefix &&
                  subject.substr(prefix.size(), kind.size()) == kind;
  if (!ok) {
    return make_error(errc::validation, "subject '" + std::string(subject) + "' is not an event subject (expected '" +
                                            prefix + ".evt.<Type>')");
  }
  const std::string_view type = subject.substr(prefix.size() + kind.size());
  if (auto v = wire::check_subject(type, "message type"); !v) return v;
  auto stored = std::make_shared<InMemoryMessage>();
  stored->subject = std::string(subject);
  stored->headers = headers;
  stored->body = std::string(body);
  return core_->store_event(type, std::move(stored));
}

namespace {

// The per-subscription delivery settings this transport can honour: it keeps
// no history (a new group gets what is published after it exists) and has no
// ack deadline (a running handler is never given to another member), so it
// refuses ack_wait and any start but new_only instead of ignoring them.
Status check_delivery_settings(const SubscribeOptions& options) {
  if (options.ack_wait) {
    return make_error(errc::validation,
                      "InMemoryTransport has no ack deadline (a running handler is never redelivered): "
                      "SubscribeOptions::ack_wait is not supported");
  }
  if (options.start && options.start->kind != StartFrom::Kind::new_only) {
    return make_error(errc::validation,
                      "InMemoryTransport keeps no history (a group gets what is published after it exists): "
                      "SubscribeOptions::start may only be StartFrom::new_only()");
  }
  return {};
}

}  // namespace

Result<Subscription> InMemoryTransport::subscribe(std::string_view type, const SubscribeOptions& options,
                                                  DeliveryHandler handler) {
  if (auto v = wire::check_subject(type, "message type"); !v) return std::move(v).error();
  if (auto v = check_delivery_settings(options); !v) return std::move(v).error();
  return core_->join(false, type, options.group, options.workers, options.retry, std::move(handler), {});
}

Result<Subscription> InMemoryTransport::subscribe_ordered(const SubscribeOptions& options,
                                                          std::vector<TypeHandler> handlers) {
  if (auto v = check_delivery_settings(options); !v) return std::move(v).error();
  return core_->join_ordered(options.group, options.workers, options.retry, std::move(handlers));
}

Result<std::string> InMemoryTransport::request(const OutboundMessage& message) {
  if (auto v = wire::check_subject(message.info.name, "message type"); !v) return std::move(v).error();
  auto core = core_;  // keeps the state alive while this thread waits
  const Context& ctx = message.context;
  const auto deadline = ctx.has_deadline() ? ctx.deadline : InMemoryClock::now() + core->options.request_timeout;
  return core->send_request(message.info.name,
                            encode(wire::command_subject(core->options.prefix, message.info.name), message), deadline);
}

Result<Subscription> InMemoryTransport::serve(std::string_view type, std::string_view service,
                                              RequestHandler handler) {
  if (auto v = wire::check_subject(type, "serve: message type"); !v) return std::move(v).error();
  return core_->join(true, type, service, core_->options.serve_workers, RetryPolicy{}, {}, std::move(handler));
}

std::vector<DeadLetter> InMemoryTransport::dead_letters() const {
  std::lock_guard lk(core_->mu);
  return {core_->dead_letters.begin(), core_->dead_letters.end()};
}

bool InMemoryTransport::remove_dead_letter(std::uint64_t sequence) {
  std::lock_guard lk(core_->mu);
  auto& dl = core_->dead_letters;
  auto it = std::find_if(dl.begin(), dl.end(), [&](const DeadLetter& d) { return d.sequence == sequence; });
  if (it == dl.end()) return false;
  dl.erase(it);
  return true;
}

std::size_t InMemoryTransport::purge_dead_letters(std::string_view type) {
  std::lock_guard lk(core_->mu);
  auto& dl = core_->dead_letters;
  const auto before = dl.size();
  dl.erase(std::remove_if(dl.begin(), dl.end(), [&](const DeadLetter& d) { return type.empty() || d.type == type; }),
           dl.end());
  return before - dl.size();
}

Status InMemoryTransport::replay_dead_letter(std::uint64_t sequence) {
  DeadLetter letter;
  {
    // Taken out first so two concurrent replays cannot both publish it.
    std::lock_guard lk(core_->mu);
    auto& dl = core_->dead_letters;
    auto it = std::find_if(dl.begin(), dl.end(), [&](const DeadLetter& d) { return d.sequence == sequence; });
    if (it == dl.end()) {
      return make_error("not_found", "no dead letter with sequence " + std::to_string(sequence));
    }
    letter = std::move(*it);
    dl.erase(it);
  }
  Headers headers = letter.message.headers;
  std::string subject = std::string(headers.get(wire::kOriginalSubject).value_or(""));
  if (subject.empty()) subject = wire::event_subject(core_->options.prefix, letter.type);
  for (auto name : kDeadLetterHeaders) headers.erase(name);
  headers.set(wire::kReplayed, std::to_string(letter.sequence));
  Status s = publish_raw(subject, headers, letter.message.body);
  if (!s) {
    std::lock_guard lk(core_->mu);
    auto& dl = core_->dead_letters;
    auto at = std::lower_bound(dl.begin(), dl.end(), letter.sequence,
                               [](const DeadLetter& d, std::uint64_t seq) { return d.sequence < seq; });
    dl.insert(at, std::move(letter));
  }
  return s;
}

bool InMemoryTransport::wait_idle(std::chrono::milliseconds timeout) const {
  std::unique_lock lk(core_->mu);
  return core_->idle_cv.wait_for(lk, timeout, [&] { return core_->outstanding == 0; });
}

std::vector<GroupStats> InMemoryTransport::stats() const {
  std::lock_guard lk(core_->mu);
  std::vector<GroupStats> out;
  for (const auto* topics : {&core_->events, &core_->services}) {
    for (const auto& [type, topic] : *topics) {
      for (const auto& [name, g] : topic.groups) out.push_back(core_->stats_of(*g));
    }
  }
  for (const auto& [name, g] : core_->ordered_groups) out.push_back(core_->stats_of(*g));
  return out;
}

std::optional<GroupStats> InMemoryTransport::group_stats(std::string_view type, std::string_view group) const {
  std::lock_guard lk(core_->mu);
  for (const auto* topics : {&core_->events, &core_->services}) {
    auto topic = topics->find(type);
    if (topic == topics->end()) continue;
    auto g = topic->second.groups.find(group);
    if (g != topic->second.groups.end()) return core_->stats_of(*g->second);
  }
  // An ordered group: by any of its types, or by its comma-separated list.
  auto g = core_->ordered_groups.find(group);
  if (g != core_->ordered_groups.end() &&
      (type == g->second->type ||
       std::binary_search(g->second->types.begin(), g->second->types.end(), type, std::less<>{}))) {
    return core_->stats_of(*g->second);
  }
  return std::nullopt;
}

}  // namespace catga
