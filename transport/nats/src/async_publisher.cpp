#include "async_publisher.hpp"

#include <algorithm>

#include "catga/wire.hpp"
#include "error.hpp"
#include "log.hpp"
#include "message.hpp"

namespace catga::nats::detail {

using Clock = std::chrono::steady_clock;

Result<std::unique_ptr<AsyncPublisher>> AsyncPublisher::create(std::shared_ptr<TransportState> state) {
  std::unique_ptr<AsyncPublisher> p(new AsyncPublisher(std::move(state)));
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = std::max<std::int64_t>(p->state_->options.publish_timeout.count(), 1);
  // Our own window (reserved_) keeps the count at most the window; nats.c's
  // is the backstop. +1: nats.c counts an ack until its handler returned,
  // we free the slot at the end of the handler.
  jo.PublishAsync.MaxPending =
      static_cast<std::int64_t>(std::max<std::size_t>(p->state_->options.max_async_pending, 1)) + 1;
  jo.PublishAsync.AckHandler = &AsyncPublisher::on_ack;
  jo.PublishAsync.AckHandlerClosure = p.get();
  if (natsStatus s = natsConnection_JetStream(p->js_.out(), p->state_->nc(), &jo); s != NATS_OK) {
    return to_error(s, "JetStream context for async publishing");
  }
  return p;
}

AsyncPublisher::~AsyncPublisher() { close(std::chrono::milliseconds(0)); }

void AsyncPublisher::on_ack(jsCtx*, natsMsg* msg, jsPubAck* ack, jsPubAckErr* err, void* closure) noexcept {
  // Runs on a nats.c thread.
  auto* self = static_cast<AsyncPublisher*>(closure);
  PublishOutcome outcome;
  try {
    if (ack != nullptr) {
      outcome.sequence = ack->Sequence;
      outcome.duplicate = ack->Duplicate;
      if (ack->Stream != nullptr && self->state_->events_stream != ack->Stream) {
        outcome.status = make_error(errc::conflict, "stored by stream '" + std::string(ack->Stream) + "', not by '" +
                                                        self->state_->events_stream + "'");
      }
    } else if (err != nullptr) {
      auto e = to_error(err->Err, err->ErrCode, "async publish", Surface::jetstream);
      if (err->ErrText != nullptr && e.message.find(err->ErrText) == std::string::npos) {
        e.message += std::string(": ") + err->ErrText;
      }
      outcome.status = std::move(e);
    } else {
      outcome.status = make_error(errc::internal, "async publish: no outcome from nats.c");
    }
  } catch (...) {
    outcome.status = make_error(errc::internal, "async publish: outcome lost");
  }
  self->complete(msg, std::move(outcome));
}

void AsyncPublisher::complete(natsMsg* msg, PublishOutcome outcome) noexcept {
  std::optional<Pending> p;
  {
    std::lock_guard lock(mu_);
    p = pending_.take(msg);
  }
  // With an AckHandler the message is ours again.
  native::destroy_message(msg);
  if (!p) return;
  // The window slot is given back only after the callback ran, so flush()
  // means "every callback has returned".
  struct FreeSlot {
    AsyncPublisher* self;
    ~FreeSlot() { self->release(); }
  } free_slot{this};
  outcome.message_id = std::move(p->message_id);
  if (p->meters != nullptr) {
    try {
      if (outcome.status) {
        p->meters->published->inc();
        p->meters->duration->observe(Clock::now() - p->started);
      } else {
        count_failure(*state_->publish_meters.registry(), "catga_publish_failures_total",
                      "Publishes that failed (after their retries), by type and error code.",
                      p->type, "code", outcome.status.error().code);
      }
    } catch (...) {
    }
  }
  if (!outcome.status) {
    try {
      state_->note_error(outcome.status.error());
    } catch (...) {
    }
  }
  if (p->done) {
    try {
      p->done(outcome);
    } catch (...) {
      log().warn("catga.nats publish_async callback threw; ignored");
    }
  }
}

Status AsyncPublisher::reserve(Clock::time_point deadline) {
  std::size_t taken = reserved_.load();
  while (taken < window_ && !reserved_.compare_exchange_weak(taken, taken + 1)) {
  }
  if (taken < window_) return {};
  // Full: wait until half the window is free (one wake-up per half window,
  // not one per ack).
  std::unique_lock lock(mu_);
  waiters_.fetch_add(1);
  struct Leave {
    std::atomic<std::size_t>& n;
    ~Leave() { n.fetch_sub(1); }
  } leave{waiters_};
  while (true) {
    if (closed_) return make_error(errc::unavailable, "publish_async: the transport is stopped", false);
    taken = reserved_.load();
    while (taken < window_ && !reserved_.compare_exchange_weak(taken, taken + 1)) {
    }
    if (taken < window_) return {};
    if (!cv_.wait_until(lock, deadline, [&] { return closed_ || reserved_.load() <= low_water(); })) {
      return make_error(errc::timeout,
                        "publish_async: window of " + std::to_string(window_) + " in-flight publishes still full",
                        true);
    }
  }
}

void AsyncPublisher::release() noexcept {
  const std::size_t left = reserved_.fetch_sub(1) - 1;
  // Blocked publishers wait for the low-water mark, flush() for zero.
  if (left <= low_water() && waiters_.load() > 0) {
    { std::lock_guard lock(mu_); }  // a waiter between its check and its sleep is asleep after this
    cv_.notify_all();
  }
}

Status AsyncPublisher::publish(const OutboundMessage& message, PublishCallback done) {
  if (auto v = wire::check_subject(message.info.name, "message type"); !v) return v;
  const auto& ctx = message.context;
  const auto deadline =
      ctx.has_deadline() ? ctx.deadline : Clock::now() + state_->options.publish_timeout;
  if (auto r = reserve(deadline); !r) return r;
  const PublishMeters* meters = state_->publish_meters.get(message.info);

  // Built in a per-thread buffer: no allocation once it has grown.
  thread_local std::string subject;
  state_->event_subject(subject, message);
  auto msg = make_message(subject, message);
  if (!msg) {
    release();
    return std::move(msg).error();
  }
  const auto wait_ms = std::max<std::int64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count(), 1);
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = wait_ms;

  natsMsg* raw = msg->get();
  bool registered = false;
  bool closed = false;
  {
    std::lock_guard lock(mu_);
    closed = closed_;
    // Cannot be full: every entry holds one of the window's slots.
    if (!closed) registered = pending_.insert(raw, Pending{std::move(done), ctx.message_id.text().str(), meters,
                                                           message.info.name, meters != nullptr ? Clock::now() : Clock::time_point{}});
  }
  if (!registered) {
    release();
    if (closed) return make_error(errc::unavailable, "publish_async: the transport is stopped", false);
    return make_error(errc::internal, "publish_async: the table of pending publishes refused an entry");
  }
  // Handover: on success nats.c takes the message (and clears `raw`); the
  // ack handler gets it back and destroys it.
  (void)msg->release();
  const natsStatus s = js_PublishMsgAsync(js_.get(), &raw, &po);
  if (s == NATS_OK) return {};
  // Failed: still ours, and no ack handler call will come for it.
  MsgHandle back(raw);
  {
    std::lock_guard lock(mu_);
    (void)pending_.take(raw);
  }
  release();
  return to_error(s, "publish_async '" + std::string(message.info.name) + "'", Surface::jetstream);
}

Status AsyncPublisher::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  waiters_.fetch_add(1);
  const bool done = cv_.wait_for(lock, timeout, [&] { return reserved_.load() == 0; });
  waiters_.fetch_sub(1);
  if (!done) {
    return make_error(errc::timeout,
                      std::to_string(reserved_.load()) + " async publishes still without an outcome", true);
  }
  return {};
}

void AsyncPublisher::close(std::chrono::milliseconds timeout) noexcept {
  try {
    {
      std::lock_guard lock(mu_);
      if (closed_ && !js_) return;
      closed_ = true;
    }
    cv_.notify_all();
    if (!js_) return;
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = std::max<std::int64_t>(timeout.count(), 1);
    (void)js_PublishAsyncComplete(js_.get(), &po);
    bool any_pending = false;
    {
      std::lock_guard lock(mu_);
      any_pending = pending_.size() > 0;
    }
    // What is still pending comes back to us: fail it, so no callback is lost
    // and none can run after we are gone. (Only then: in 3.4.1 the call
    // crashes on a context that never published asynchronously.)
    natsMsgList list{};
    if (any_pending && js_PublishAsyncGetPendingList(&list, js_.get()) == NATS_OK) {
      for (int i = 0; i < list.Count; ++i) {
        natsMsg* m = list.Msgs[i];
        list.Msgs[i] = nullptr;
        PublishOutcome o;
        o.status = make_error(errc::unavailable, "publish_async: no ack before the transport stopped", true);
        complete(m, std::move(o));
      }
      natsMsgList_Destroy(&list);
    }
    js_.reset();
  } catch (...) {
    log().error("catga.nats closing the async publisher failed");
  }
}

}  // namespace catga::nats::detail
