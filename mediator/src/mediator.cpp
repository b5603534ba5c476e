#include "catga/mediator.hpp"

#include <atomic>
#include <typeinfo>

namespace catga {

namespace detail {

std::size_t next_message_slot() noexcept {
  static std::atomic<std::size_t> next{0};
  return next.fetch_add(1, std::memory_order_relaxed);
}

namespace {

// What every link of one dispatch shares.
struct ChainFrame {
  Behavior* const* end;
  Invocation& inv;
  ErasedHandler& handler;
};

// `next` of the behavior before `pos`: runs *pos with the link after it, or
// the handler at the end. One small object and one indirect call per level
// (no nested lambda and helper call); retry may call it again, so it keeps
// no state of its own.
struct ChainLink {
  Behavior* const* pos;
  const ChainFrame* frame;

  Status operator()() const {
    if (pos == frame->end) return frame->handler.call(frame->inv);
    const ChainLink rest{pos + 1, frame};
    return (*pos)->handle(frame->inv, Next(rest));
  }
};

}  // namespace

Status run_chain(const std::vector<Behavior*>& chain, Invocation& inv, ErasedHandler& handler) noexcept {
  try {
    const ChainFrame frame{chain.data() + chain.size(), inv, handler};
    return ChainLink{chain.data(), &frame}();
  } catch (...) {
    // A behavior threw: the pipeline boundary turns it into an Error too.
    return error_from_current_exception();
  }
}

Error no_handler_error(const MessageInfo& info) {
  std::string msg = "no handler registered for ";
  msg.append(to_string(info.kind)).append(" '").append(info.name).append("'");
  return make_error(errc::no_handler, std::move(msg));
}

Error no_transport_error(const MessageInfo& info) {
  std::string msg = "'";
  msg.append(info.name).append("' needs a transport, but none is attached to the mediator");
  return make_error(errc::no_handler, std::move(msg));
}

Status combine_event_failures(const MessageInfo& info, std::vector<std::pair<std::string_view, Error>>& failures) {
  if (failures.size() == 1 && failures[0].first == "transport") return std::move(failures[0].second);
  std::string msg = std::to_string(failures.size()) + " failure(s) publishing '" + std::string(info.name) + "':";
  bool retryable = true;
  for (const auto& [who, err] : failures) {
    msg.append(" [").append(who).append("] ").append(err.code).append(": ").append(err.message).append(";");
    retryable = retryable && err.retryable;
  }
  msg.pop_back();
  return make_error(errc::handler_failed, std::move(msg), retryable);
}

Status upcast_body(const MessageInfo& info, const std::vector<Upcaster>& upcasters, int version, nlohmann::json& body) {
  for (int v = version; v < info.version; ++v) {
    const auto i = static_cast<std::size_t>(v - 1);
    if (i >= upcasters.size() || !upcasters[i]) continue;  // nothing changed in this step
    auto failed = [&](std::string_view why) {
      std::string msg = "upcasting '";
      msg.append(info.name).append("' from version ").append(std::to_string(v)).append(" failed: ").append(why);
      return make_error(errc::malformed, std::move(msg));
    };
    try {
      body = upcasters[i](std::move(body));
    } catch (const std::exception& e) {
      return failed(e.what());
    } catch (...) {
      return failed("unknown exception");
    }
    if (!body.is_object()) return failed("the upcaster did not return a JSON object");
  }
  return {};
}

}  // namespace detail

std::string_view to_string(MessageKind kind) noexcept {
  switch (kind) {
    case MessageKind::command: return "command";
    case MessageKind::query: return "query";
    case MessageKind::event: return "event";
  }
  return "message";
}

std::string_view to_string(QoS qos) noexcept {
  switch (qos) {
    case QoS::at_most_once: return "at_most_once";
    case QoS::at_least_once: return "at_least_once";
    case QoS::exactly_once: return "exactly_once";
  }
  return "unknown";
}

Error error_from_current_exception() noexcept {
  try {
    throw;
  } catch (const Exception& e) {
    return e.error();
  } catch (const std::exception& e) {
    // Unknown failures may be transient (a dropped connection, a busy
    // database): retryable, so the retry behavior and redelivery get a chance.
    return Error{std::string(errc::exception), std::string(typeid(e).name()) + ": " + e.what(), true};
  } catch (...) {
    return Error{std::string(errc::exception), "unknown exception", true};
  }
}

Mediator::Mediator() = default;
Mediator::~Mediator() = default;

detail::Entry& Mediator::entry(const MessageInfo& info) {
  if (info.slot >= entries_.size()) entries_.resize(info.slot + 1);
  auto& e = entries_[info.slot];
  if (!e) {
    e = std::make_unique<detail::Entry>();
    e->info = &info;
    rebuild_chain(*e);
  }
  return *e;
}

void Mediator::set_handler(const MessageInfo& info, std::unique_ptr<detail::ErasedHandler> handler) {
  auto& e = entry(info);
  if (e.handler) {
    throw Exception(make_error(errc::duplicate_handler, "a handler for " + std::string(to_string(info.kind)) + " '" +
                                                            std::string(info.name) + "' is already registered"));
  }
  e.handler = std::move(handler);
}

void Mediator::add_event_handler(const MessageInfo& info, std::string name,
                                 std::unique_ptr<detail::ErasedHandler> handler) {
  auto& e = entry(info);
  if (name.empty()) name = "handler-" + std::to_string(e.event_handlers.size() + 1);
  for (const auto& h : e.event_handlers) {
    if (h.key == name) {
      throw Exception(make_error(errc::duplicate_handler, "event '" + std::string(info.name) +
                                                              "' already has a handler named '" + name + "'"));
    }
  }
  e.event_handlers.push_back({std::move(name), std::move(handler)});
}

void Mediator::use(std::shared_ptr<Behavior> behavior) {
  if (!behavior) throw Exception(make_error(errc::internal, "Mediator::use: null behavior"));
  global_.push_back(std::move(behavior));
  global_chain_.push_back(global_.back().get());
  for (auto& e : entries_) {
    if (e) rebuild_chain(*e);
  }
}

void Mediator::add_type_behavior(const MessageInfo& info, std::shared_ptr<Behavior> behavior) {
  if (!behavior) throw Exception(make_error(errc::internal, "Mediator::use: null behavior"));
  auto& e = entry(info);
  e.behaviors.push_back(std::move(behavior));
  rebuild_chain(e);
}

void Mediator::add_upcaster(const MessageInfo& info, int from_version, Upcaster step) {
  if (from_version < 1 || from_version >= info.version) {
    throw Exception(make_error(errc::validation, "an upcaster of '" + std::string(info.name) + "' from version " +
                                                     std::to_string(from_version) + " never runs: its current version is " +
                                                     std::to_string(info.version) + " (CATGA_VERSION)"));
  }
  if (!step) throw Exception(make_error(errc::internal, "Mediator::upcast: empty upcaster"));
  auto& e = entry(info);
  const auto i = static_cast<std::size_t>(from_version - 1);
  if (e.upcasters.size() <= i) e.upcasters.resize(i + 1);
  if (e.upcasters[i]) {
    throw Exception(make_error(errc::duplicate_handler, "an upcaster of '" + std::string(info.name) +
                                                            "' from version " + std::to_string(from_version) +
                                                            " is already registered"));
  }
  e.upcasters[i] = std::move(step);
}

void Mediator::rebuild_chain(detail::Entry& e) {
  e.chain = global_chain_;
  for (const auto& b : e.behaviors) e.chain.push_back(b.get());
}

Status Mediator::publish_to_transport(const MessageInfo& info, const void* event, const Context& ctx) {
  const std::string body = info.encode_body(event);
  if (info.keyed() && !ctx.headers.get(wire::kOrderingKey)) {
    // Keyed events carry their key (a publisher may have set it already).
    Context keyed = ctx;
    keyed.headers.set(wire::kOrderingKey, info.ordering_key(event));
    return transport_->publish(OutboundMessage{info, body, keyed});
  }
  return transport_->publish(OutboundMessage{info, body, ctx});
}

}  // namespace catga
