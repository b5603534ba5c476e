#include "responder.hpp"

#include <algorithm>

#include "catga/handler.hpp"
#include "catga/wire.hpp"
#include "error.hpp"
#include "log.hpp"
#include "message.hpp"
#include "thread_name.hpp"

namespace catga::nats::detail {
namespace {
constexpr std::string_view kServed = "catga_requests_served_total";
constexpr std::string_view kServedHelp = "Requests this service answered, by type, service and outcome (ok or the error code).";
}  // namespace

Responder::Responder(std::shared_ptr<TransportState> state, std::string type, std::string service,
                     RequestHandler handler)
    : state_(std::move(state)), type_(std::move(type)), service_(std::move(service)), handler_(std::move(handler)) {
  subject_ = wire::command_subject(state_->options.prefix, type_);
  max_in_flight_ = state_->options.serve_bound();
  overloaded_reply_ = wire::encode_reply(
      make_error(errc::overloaded,
                 "service '" + service_ + "' already holds " + std::to_string(max_in_flight_) + " requests of '" +
                     type_ + "' (serve_max_in_flight); try again later",
                 true),
      nullptr);
  if (const auto& metrics = state_->options.metrics) {
    served_ok_ = &metrics->counter(kServed, kServedHelp, {{"type", type_}, {"service", service_}, {"outcome", "ok"}});
    refused_ =
        &metrics->counter(kServed, kServedHelp, {{"type", type_}, {"service", service_}, {"outcome", std::string(errc::overloaded)}});
  }
}

void Responder::count_served(std::string_view body) noexcept try {
  if (body.starts_with(R"({"ok":true)")) {
    served_ok_->inc();
    return;
  }
  const std::string outcome = reply_outcome(body);
  if (outcome == "ok") {
    served_ok_->inc();
    return;
  }
  state_->options.metrics->counter(kServed, kServedHelp, {{"type", type_}, {"service", service_}, {"outcome", outcome}})
      .inc();
} catch (...) {
}

Result<std::shared_ptr<Responder>> Responder::start(std::shared_ptr<TransportState> state, std::string type,
                                                    std::string service, RequestHandler handler) {
  if (!handler) return make_error(errc::validation, "serve: empty handler");
  if (auto v = wire::check_subject(type, "serve: message type"); !v) return std::move(v).error();
  if (auto v = wire::check_subject(service, "serve: service (queue group) name", wire::SubjectPart::token); !v) {
    return std::move(v).error();
  }
  std::shared_ptr<Responder> r(new Responder(std::move(state), std::move(type), std::move(service), std::move(handler)));
  const natsStatus s = natsConnection_QueueSubscribeSync(r->sub_.out(), r->state_->nc(), r->subject_.c_str(),
                                                         r->service_.c_str());
  if (s != NATS_OK) return to_error(s, "queue subscribe to '" + r->subject_ + "'");
  natsSubscription_SetPendingLimits(r->sub_.get(), -1, -1);
  // Make sure the server knows the subscription before serve() returns, so
  // a request sent right after does not find "no responders".
  if (natsStatus f = natsConnection_FlushTimeout(r->state_->nc(), 5000); f != NATS_OK) {
    log().debug("catga.nats serve '{}': flush failed ({}); the subscription is sent on reconnect", r->subject_,
                natsStatus_GetText(f));
  }
  r->receiver_ = std::thread([raw = r.get()] {
    name_this_thread("catga-serve-rx");
    raw->receive_loop();
  });
  const std::size_t n = std::max<std::size_t>(r->state_->options.serve_workers, 1);
  for (std::size_t i = 0; i < n; ++i) {
    r->workers_.emplace_back([raw = r.get()] {
      name_this_thread("catga-serve");
      raw->worker_loop();
    });
  }
  return r;
}

Responder::~Responder() { stop_now(state_->options.stop_timeout); }

void Responder::receive_loop() noexcept {
  try {
    while (true) {
      MsgHandle msg;
      const natsStatus s = natsSubscription_NextMsg(msg.out(), sub_.get(), 1000);
      if (s == NATS_OK) {
        if (!admit(msg.get())) continue;
        {
          std::lock_guard lock(mu_);
          queue_.push_back(std::move(msg));
        }
        cv_.notify_one();
        continue;
      }
      if (s == NATS_TIMEOUT) {
        bool stopping = false;
        {
          std::lock_guard lock(mu_);
          stopping = stopping_;
        }
        // Drained (or closed): done.
        if (stopping && !natsSubscription_IsValid(sub_.get())) break;
        continue;
      }
      if (s == NATS_INVALID_SUBSCRIPTION || s == NATS_CONNECTION_CLOSED) break;
      state_->note_error(to_error(s, "read requests on '" + subject_ + "'"));
    }
  } catch (...) {
    log().error("catga.nats receive loop of '{}' failed", subject_);
  }
}

void Responder::worker_loop() noexcept {
  while (true) {
    MsgHandle msg;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return !queue_.empty() || exit_; });
      if (queue_.empty()) return;
      msg = std::move(queue_.front());
      queue_.pop_front();
    }
    answer(msg.get());
    in_flight_.fetch_sub(1, std::memory_order_release);
  }
}

bool Responder::admit(natsMsg* msg) noexcept {
  if (in_flight_.load(std::memory_order_acquire) < max_in_flight_) {
    in_flight_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  refuse(msg);
  if (refused_ != nullptr) refused_->inc();
  return false;
}

void Responder::refuse(natsMsg* msg) noexcept try {
  const auto reply = reply_of(msg);
  if (!reply.empty()) {
    const natsStatus s = natsConnection_Publish(state_->nc(), reply.data(), overloaded_reply_.data(),
                                                static_cast<int>(overloaded_reply_.size()));
    if (s != NATS_OK) state_->note_error(to_error(s, "reply to a request on '" + subject_ + "'"));
  }
  // One warning per 10 s at most: a burst must not flood the log.
  ++refused_unlogged_;
  const auto now = std::chrono::steady_clock::now();
  if (now - refused_logged_at_ >= std::chrono::seconds(10)) {
    log().warn("catga.nats serve '{}': {} requests refused as overloaded ({} in flight)", subject_,
               refused_unlogged_, max_in_flight_);
    refused_unlogged_ = 0;
    refused_logged_at_ = now;
  }
} catch (...) {
  // Logging failed; the caller was answered (or will time out).
}

void Responder::answer(natsMsg* msg) noexcept {
  try {
    std::string body;
    try {
      NatsDelivery delivery(msg, 1, 0);
      body = handler_(delivery);
    } catch (...) {
      body = wire::encode_reply(error_from_current_exception(), nullptr);
    }
    if (served_ok_ != nullptr) count_served(body);
    const auto reply = reply_of(msg);
    if (reply.empty()) return;  // fire-and-forget: nobody waits for an answer
    const natsStatus s = natsConnection_Publish(state_->nc(), reply.data(), body.data(), static_cast<int>(body.size()));
    if (s != NATS_OK) state_->note_error(to_error(s, "reply to a request on '" + subject_ + "'"));
  } catch (...) {
    log().error("catga.nats answering a request on '{}' failed", subject_);
  }
}

void Responder::stop(std::chrono::milliseconds timeout) noexcept {
  const auto me = std::this_thread::get_id();
  if (std::any_of(workers_.begin(), workers_.end(), [&](const std::thread& w) { return w.get_id() == me; })) {
    try {
      std::thread([self = shared_from_this(), timeout] { self->stop_now(timeout); }).detach();
    } catch (...) {
      log().error("catga.nats cannot stop the responder of '{}' from its own handler", subject_);
    }
    return;
  }
  stop_now(timeout);
}

void Responder::stop_now(std::chrono::milliseconds timeout) noexcept {
  try {
    std::lock_guard stop_lock(stop_mu_);
    if (stopped_) return;
    stopped_ = true;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    // Drain: the server stops routing to us (other members take over), what
    // it already sent is still answered.
    if (natsSubscription_DrainTimeout(sub_.get(), std::max<std::int64_t>(timeout.count(), 1)) != NATS_OK) {
      natsSubscription_Unsubscribe(sub_.get());
    }
    if (receiver_.joinable()) receiver_.join();
    {
      std::lock_guard lock(mu_);
      exit_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) {
      if (w.joinable()) w.join();
    }
    impl_of(*state_->connection).retire(std::move(sub_), std::chrono::milliseconds(1000));
  } catch (...) {
    log().error("catga.nats stopping the responder of '{}' failed", subject_);
  }
}

}  // namespace catga::nats::detail
