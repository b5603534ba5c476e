#include "pull_consumer.hpp"

#include <algorithm>
#include <cstdio>
#include <limits>

#include "ack_reply.hpp"
#include "catga/handler.hpp"
#include "catga/wire.hpp"
#include "error.hpp"
#include "log.hpp"
#include "message.hpp"
#include "provisioning.hpp"
#include "thread_name.hpp"

namespace catga::nats::detail {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kStatusHeader = "Status";
constexpr std::string_view kDescriptionHeader = "Description";
// Set on a dead-letter copy whose body was cut to fit the server's max
// payload: the original body size in bytes.
constexpr std::string_view kBodyTruncatedHeader = wire::kBodyTruncated;
// Room kept free beside the estimated header block of a dead-letter copy.
constexpr std::size_t kPayloadMargin = 512;

// How long after its expiry a pull request without a status message is
// given up (the server may have lost it: restart, leader change).
constexpr auto kRequestGrace = std::chrono::seconds(2);

bool is_dead_letter_header(std::string_view k) {
  return k == wire::kError || k == wire::kErrorCode || k == wire::kDeliveries || k == wire::kOriginalSubject ||
         k == wire::kOriginalSeq || k == wire::kGroup || k == wire::kOriginalMsgId || k == kBodyTruncatedHeader;
}

std::chrono::milliseconds until(Clock::time_point t, Clock::time_point now) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t - now);
}

}  // namespace

PullConsumer::PullConsumer(std::shared_ptr<TransportState> state, Config config, DeliveryHandler handler)
    : state_(std::move(state)), config_(std::move(config)), handler_(std::move(handler)) {
  next_subject_ = "$JS.API.CONSUMER.MSG.NEXT." + state_->events_stream + "." + config_.consumer;
  in_progress_interval_ = config_.options.in_progress_interval.count() > 0
                              ? config_.options.in_progress_interval
                              : std::max(config_.options.ack_wait / 3, std::chrono::milliseconds(10));
  slots_.resize(config_.workers);
  // Room for three batches beyond the running handlers: one being handled
  // and two requests open, each for a full batch. (With two batches of room
  // the second request could only ask for what the first left free — 93
  // messages on average in the bench, not 128 — and the server pays per
  // request.)
  max_limit_ = 3 * static_cast<std::size_t>(config_.options.batch) + config_.workers;
  inline_ = config_.workers == 1;
  ack_prefix_ = AckPrefix::of(state_->events_stream, config_.consumer);
  if (const auto& metrics = state_->options.metrics) {
    // An ordered partition reads several types ("A,B"); its lag is not the
    // group's (each member sees its own partitions), so it has none.
    std::string_view types = config_.type;
    while (!types.empty()) {
      const auto comma = types.find(',');
      const auto type = types.substr(0, comma);
      meters_.push_back({std::string(type), ConsumerMeters::resolve(*metrics, type, config_.group, !config_.ordered)});
      types = comma == std::string_view::npos ? std::string_view{} : types.substr(comma + 1);
    }
  }
}

const ConsumerMeters* PullConsumer::meters_for(natsMsg* msg) const noexcept {
  if (meters_.size() == 1) return &meters_.front().meters;
  // <prefix>.evt.<Type>.<partition>
  const std::string_view subject = subject_of(msg);
  const std::size_t skip = state_->options.prefix.size() + 5;
  std::string_view type = subject.size() > skip ? subject.substr(skip) : std::string_view{};
  type = type.substr(0, type.find('.'));
  for (const auto& t : meters_) {
    if (t.type == type) return &t.meters;
  }
  return nullptr;
}

Result<std::shared_ptr<PullConsumer>> PullConsumer::start(std::shared_ptr<TransportState> state, Config config,
                                                          DeliveryHandler handler) {
  if (!handler) return make_error(errc::validation, "subscribe: empty handler");
  if (config.group.empty()) return make_error(errc::validation, "subscribe: a consumer group name is required");
  config.workers = std::max<std::size_t>(config.workers, 1);
  config.options.batch = std::max(config.options.batch, 1);
  config.options.fetch_expires = std::max(config.options.fetch_expires, std::chrono::milliseconds(10));
  if (config.retry.max_deliver < 1) config.retry.max_deliver = 1;

  if (config.identity.empty()) config.identity = config.consumer;

  std::shared_ptr<PullConsumer> pc(new PullConsumer(state, std::move(config), std::move(handler)));
  ConsumerSpec spec{state->events_stream, pc->config_.consumer, pc->config_.subject,
                    "catga group '" + pc->config_.group + "' for " + pc->config_.type, pc->config_.options,
                    pc->config_.start_sequence};
  if (auto s = ensure_consumer(state->js(), spec, state->options.publish_timeout); !s) return std::move(s).error();

  InboxHandle inbox;
  if (natsStatus s = natsInbox_Create(inbox.out()); s != NATS_OK) return to_error(s, "create inbox");
  pc->inbox_ = inbox.get();
  const std::string wildcard = pc->inbox_ + ".*";
  if (natsStatus s = natsConnection_SubscribeSync(pc->inbox_sub_.out(), state->nc(), wildcard.c_str()); s != NATS_OK) {
    return to_error(s, "subscribe to pull inbox");
  }
  // Bounded by our own requests; never let nats.c drop one as a slow consumer.
  natsSubscription_SetPendingLimits(pc->inbox_sub_.get(), -1, -1);

  pc->fetcher_ = std::thread([raw = pc.get()] {
    name_this_thread("catga-fetch");
    raw->fetch_loop();
  });
  if (pc->inline_) {
    pc->workers_.emplace_back([raw = pc.get()] {
      name_this_thread("catga-keeper");
      raw->keeper_loop();
    });
  } else {
    for (std::size_t i = 0; i < pc->config_.workers; ++i) {
      pc->workers_.emplace_back([raw = pc.get(), i] {
        name_this_thread("catga-handler");
        raw->worker_loop(i);
      });
    }
  }
  log().debug("catga.nats subscribed group '{}' to '{}' (consumer '{}', {} workers)", pc->config_.group,
              pc->config_.subject, pc->config_.consumer, pc->config_.workers);
  return pc;
}

PullConsumer::~PullConsumer() { stop_now(state_->options.stop_timeout); }

void PullConsumer::reply(std::string_view subject, std::string_view body) noexcept {
  // `subject` always views a NUL-terminated string (a natsMsg reply or a std::string).
  const natsStatus s = natsConnection_Publish(state_->nc(), subject.data(), body.data(), static_cast<int>(body.size()));
  if (s != NATS_OK) {
    try {
      state_->note_error(to_error(s, "send '" + std::string(body.substr(0, 5)) + "' for consumer '" + config_.consumer + "'"));
    } catch (...) {
    }
  }
}

bool PullConsumer::send_pull(int batch) {
  const auto expires_ns = std::chrono::nanoseconds(config_.options.fetch_expires).count();
  char body[96];
  const int len = std::snprintf(body, sizeof body, "{\"batch\":%d,\"expires\":%lld}", batch,
                                static_cast<long long>(expires_ns));
  ++request_id_;
  const std::string reply_to = inbox_ + "." + std::to_string(request_id_);
  const natsStatus s = natsConnection_PublishRequest(state_->nc(), next_subject_.c_str(), reply_to.c_str(), body, len);
  if (s != NATS_OK) return false;
  open_[open_count_++] = {request_id_, static_cast<std::size_t>(batch),
                          Clock::now() + config_.options.fetch_expires + kRequestGrace};
  return true;
}

PullConsumer::OpenRequest* PullConsumer::open_request_for(std::string_view subject) noexcept {
  // <inbox>.<n>: compare the number only (the inbox is ours by subscription).
  if (subject.size() <= inbox_.size() + 1) return nullptr;
  std::uint64_t id = 0;
  for (const char c : subject.substr(inbox_.size() + 1)) {
    if (c < '0' || c > '9') return nullptr;
    id = id * 10 + static_cast<std::uint64_t>(c - '0');
  }
  for (std::size_t i = 0; i < open_count_; ++i) {
    if (open_[i].id == id) return &open_[i];
  }
  return nullptr;
}

void PullConsumer::close_request(const OpenRequest* request) noexcept {
  const auto i = static_cast<std::size_t>(request - open_.data());
  for (std::size_t j = i + 1; j < open_count_; ++j) open_[j - 1] = open_[j];
  --open_count_;
}

bool PullConsumer::expire_requests(Clock::time_point now) noexcept {
  bool expired = false;
  while (open_count_ > 0 && now >= open_[0].deadline) {  // oldest first: deadlines ascend
    close_request(&open_[0]);
    expired = true;
  }
  return expired;
}

void PullConsumer::signal_in_progress(Clock::time_point now) {
  std::vector<std::string> due;
  {
    std::lock_guard lock(mu_);
    for (auto& slot : slots_) {
      if (slot.active && now - slot.last_signal >= in_progress_interval_) {
        due.push_back(slot.reply);
        slot.last_signal = now;
      }
    }
    // Held and not started: their ack wait runs as well.
    auto keep = [&](Held& h) {
      if (now - h.last_signal >= in_progress_interval_) {
        due.emplace_back(reply_of(h.msg.get()));
        h.last_signal = now;
      }
    };
    for (auto& h : queue_) keep(h);
    for (std::size_t i = inline_next_; i < inline_held_.size(); ++i) keep(inline_held_[i]);
  }
  for (const auto& r : due) reply(r, "+WPI");
}

std::size_t PullConsumer::limit() const noexcept {
  const std::int64_t per_message = handler_ns_.load(std::memory_order_relaxed);
  if (per_message <= 0) return max_limit_;
  const auto ahead = std::chrono::nanoseconds(config_.options.fetch_ahead).count();
  const auto n = static_cast<std::size_t>(ahead / per_message) * config_.workers + config_.workers;
  return std::clamp(n, config_.workers + 1, max_limit_);
}

void PullConsumer::run_timed(MsgHandle msg, std::size_t index, bool abandon) noexcept {
  const auto started = Clock::now();
  run_guarded(std::move(msg), index, abandon);
  if (abandon) return;
  // A moving average over about eight messages; workers racing here lose an
  // update at worst.
  const std::int64_t took = std::max<std::int64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - started).count(), 1);
  const std::int64_t old = handler_ns_.load(std::memory_order_relaxed);
  handler_ns_.store(old == 0 ? took : old + (took - old) / 8, std::memory_order_relaxed);
}

void PullConsumer::fetch_loop() noexcept {
  try {
    const auto& conn = *state_->connection;
    std::uint64_t seen_reconnects = conn.reconnects();
    bool draining = false;
    std::vector<MsgHandle> arrived;
    Clock::time_point drain_deadline{};
    auto next_tick = Clock::now() + in_progress_interval_;

    while (true) {
      auto now = Clock::now();
      if (now >= next_tick) {
        signal_in_progress(now);
        next_tick = now + in_progress_interval_;
      }
      bool stopping = false;
      {
        std::lock_guard lock(mu_);
        stopping = stop_fetching_;
      }
      if (stopping && !draining) {
        // No more pull requests. Those still open at the server are let run
        // out (what they deliver meanwhile is handled) before the inbox is
        // unsubscribed: nats-server 2.9 hands a redelivery to an open request
        // whose inbox is gone and rewinds the consumer (the message comes
        // back with attempt 1, or only after a whole ack wait). Then drain:
        // what the server sent before it saw the UNSUB still arrives.
        Clock::time_point stop_deadline;
        {
          std::lock_guard lock(mu_);
          stop_deadline = stop_deadline_;
        }
        expire_requests(now);
        if (open_count_ == 0 || now >= stop_deadline) {
          if (open_count_ > 0) {
            log().debug("catga.nats consumer '{}': stop deadline with {} pull requests open", config_.consumer,
                        open_count_);
          }
          if (natsSubscription_Drain(inbox_sub_.get()) != NATS_OK) natsSubscription_Unsubscribe(inbox_sub_.get());
          draining = true;
          drain_deadline = std::min(stop_deadline, now + std::chrono::milliseconds(5000));
        }
      }
      if (draining && now >= drain_deadline) break;

      if (const auto r = conn.reconnects(); r != seen_reconnects) {
        seen_reconnects = r;
        close_all_requests();  // the server may have forgotten them
        verify_consumer_ = true;  // and the consumer too (memory storage, a new server)
      }
      if (!stopping && verify_consumer_ && now >= retry_at_) {
        (void)state_->reprovision();
        if (recreate_consumer(std::chrono::seconds(2))) {
          verify_consumer_ = false;
        } else {
          back_off(now);
        }
      }

      if (may_request(stopping, now)) {
        std::size_t held = 0;
        bool idle = false;
        {
          std::lock_guard lock(mu_);
          held = queue_.size() + running_;
          idle = queue_.empty();
        }
        bool asked = false;
        while (may_request(stopping, now) && request_more(held, idle, now)) asked = true;
        // No room and nothing owed: wait for the workers to free room. With
        // a request open, its messages (or its status) wake us instead.
        if (!asked && open_count_ == 0) {
          std::unique_lock lock(mu_);
          fetch_wake_at_ = limit() - wanted_room(idle);
          room_cv_.wait_until(lock, std::min(next_tick, now + std::chrono::milliseconds(200)), [&] {
            return stop_fetching_ || queue_.size() + running_ <= fetch_wake_at_;
          });
          fetch_wake_at_ = kNotWaiting;
          continue;
        }
      }

      now = Clock::now();
      auto wait = until(next_tick, now);
      if (stopping) {
        wait = std::min(wait, std::chrono::milliseconds(50));
      } else if (open_count_ > 0) {
        wait = std::min(wait, until(open_[0].deadline, now));
      } else {
        wait = std::min(wait, std::max(until(retry_at_, now), std::chrono::milliseconds(1)));
      }
      wait = std::max(wait, std::chrono::milliseconds(1));

      MsgHandle msg;
      const natsStatus s = natsSubscription_NextMsg(msg.out(), inbox_sub_.get(), wait.count());
      if (s == NATS_OK) {
        // Take what else nats.c already holds, then hand the lot to the
        // workers at once: one lock and one wake-up per burst, not per message.
        arrived.clear();
        if (accept(msg)) arrived.push_back(std::move(msg));
        read_pending(arrived, 512);
        // Also what the open requests deliver while a stop waits for them to
        // run out: handing it back (-NAK) would use up a delivery and land in
        // one of those requests again.
        if (inline_) {
          handle_here(arrived, stopping);
        } else {
          enqueue(arrived);
        }
        continue;
      }
      if (s == NATS_TIMEOUT) {
        if (draining) {
          if (!natsSubscription_IsValid(inbox_sub_.get())) break;  // drained
          continue;
        }
        if (stopping) continue;  // the requests' ends are awaited above
        if (expire_requests(Clock::now())) {
          if (++silent_expiries_ >= 2) {
            // Requests vanish without an answer: the consumer may be gone
            // (deleted, or a memory stream after a restart). Recreate it.
            silent_expiries_ = 0;
            (void)state_->reprovision();
            (void)recreate_consumer(std::chrono::seconds(2));
          }
        }
        continue;
      }
      if (s == NATS_INVALID_SUBSCRIPTION || s == NATS_CONNECTION_CLOSED) {
        if (!draining) {
          state_->note_error(to_error(s, "pull inbox of consumer '" + config_.consumer + "' closed"));
        }
        break;
      }
      // Anything else (e.g. a slow-consumer notice) is logged and survived.
      state_->note_error(to_error(s, "read pull inbox of consumer '" + config_.consumer + "'"));
    }
  } catch (const std::exception& e) {
    log().error("catga.nats fetch loop of consumer '{}' failed: {}", config_.consumer, e.what());
  } catch (...) {
    log().error("catga.nats fetch loop of consumer '{}' failed", config_.consumer);
  }
}

std::size_t PullConsumer::wanted_room(bool idle) const noexcept {
  // Ask again when a full batch fits (a third of the holding limit when
  // slow handlers keep that below three batches), or as soon as anything
  // fits when nothing waits to be handled. Never more than the limit, or
  // the fetcher would wait for room it can never get.
  if (idle) return 1;
  return std::clamp<std::size_t>(limit() / 3, 1, static_cast<std::size_t>(config_.options.batch));
}

void PullConsumer::back_off(Clock::time_point now) noexcept {
  retry_at_ = now + pause_;
  pause_ = std::min(pause_ * 2, std::chrono::milliseconds(1000));
}

bool PullConsumer::request_more(std::size_t held, bool idle, Clock::time_point now) {
  const std::size_t busy = held + owed();
  const std::size_t cap = limit();
  const std::size_t room = busy < cap ? cap - busy : 0;
  if (room < wanted_room(idle)) return false;
  const int n = static_cast<int>(std::min<std::size_t>(room, static_cast<std::size_t>(config_.options.batch)));
  if (send_pull(n)) {
    pause_ = std::chrono::milliseconds(50);
  } else {
    back_off(now);
  }
  return true;
}

void PullConsumer::handle_here(std::vector<MsgHandle>& arrived, bool stopping) {
  {
    // Shared with the keeper thread, which keeps the waiting ones alive.
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    inline_held_.clear();
    inline_next_ = 0;
    for (auto& m : arrived) inline_held_.push_back({std::move(m), now, {}});
  }
  arrived.clear();
  auto& slot = slots_[0];
  // What the open requests deliver meanwhile waits in nats.c, where nobody
  // keeps it alive: it is taken in every half in_progress_interval.
  auto next_take = Clock::now() + in_progress_interval_ / 2;
  // One lock per message: it ends the previous message's slot and starts
  // this one's. (Until then the keeper may still see the previous, already
  // acked message as running: a late "+WPI" for it is ignored by the server.)
  bool slot_held = false;
  for (std::size_t i = 0;; ++i) {
    const auto now = Clock::now();
    if (now >= next_take) {
      take_received();
      next_take = now + in_progress_interval_ / 2;
    }
    // Only this thread changes inline_held_, so it reads the size unlocked.
    if (i >= inline_held_.size()) break;
    // The next batch is requested while this one is handled.
    if (may_request(stopping, now)) {
      (void)request_more(inline_held_.size() - i, false, now);
    }
    MsgHandle msg;
    bool abandon = false;
    {
      std::lock_guard lock(mu_);
      msg = std::move(inline_held_[i].msg);
      inline_next_ = i + 1;
      abandon = stop_fetching_ && now >= stop_deadline_;
      if (abandon) {
        if (slot_held) {
          --running_;
          slot.active = false;
          slot_held = false;
        }
      } else {
        if (!slot_held) {
          ++running_;
          slot.active = true;
          slot_held = true;
        }
        slot.reply.assign(reply_of(msg.get()));
        slot.last_signal = now;
      }
    }
    run_timed(std::move(msg), 0, abandon);
  }
  std::lock_guard lock(mu_);
  if (slot_held) {
    --running_;
    slot.active = false;
  }
  inline_held_.clear();
  inline_next_ = 0;
}

void PullConsumer::read_pending(std::vector<MsgHandle>& into, int most) {
  int queued = 0, bytes = 0;
  if (natsSubscription_GetPending(inbox_sub_.get(), &queued, &bytes) != NATS_OK) return;
  for (int i = 0; i < std::min(queued, most); ++i) {
    MsgHandle m;
    if (natsSubscription_NextMsg(m.out(), inbox_sub_.get(), 1) != NATS_OK) break;
    if (accept(m)) into.push_back(std::move(m));
  }
}

void PullConsumer::take_received() {
  std::vector<MsgHandle> more;
  read_pending(more, std::numeric_limits<int>::max());
  if (more.empty()) return;
  std::lock_guard lock(mu_);
  const auto now = Clock::now();
  for (auto& m : more) inline_held_.push_back({std::move(m), now, {}});
}

void PullConsumer::keeper_loop() noexcept {
  // Handlers run on the fetch thread here: "+WPI" for a long one comes from
  // this thread, which wakes once per in_progress_interval.
  std::unique_lock lock(mu_);
  while (!workers_exit_) {
    work_cv_.wait_for(lock, in_progress_interval_, [&] { return workers_exit_; });
    if (workers_exit_) break;
    lock.unlock();
    signal_in_progress(Clock::now());
    lock.lock();
  }
}

void PullConsumer::run_guarded(MsgHandle msg, std::size_t index, bool abandon) noexcept {
  try {
    if (abandon) {
      // Stop ran out of time: hand it back, to be redelivered once this
      // member's pull requests have run out (a redelivery meeting one of
      // them after the inbox is gone would rewind the consumer on 2.9).
      const auto delay = std::chrono::nanoseconds(config_.options.fetch_expires + kRequestGrace).count();
      char body[64];
      const int n = std::snprintf(body, sizeof body, "-NAK {\"delay\":%lld}", static_cast<long long>(delay));
      reply(reply_of(msg.get()), std::string_view(body, static_cast<std::size_t>(n)));
    } else {
      process(std::move(msg), index);
    }
  } catch (const std::exception& e) {
    log().error("catga.nats consumer '{}': {}", config_.consumer, e.what());
  } catch (...) {
    log().error("catga.nats consumer '{}': unknown failure", config_.consumer);
  }
}

void PullConsumer::lose() noexcept {
  if (lost_.exchange(true)) return;
  log().info("catga.nats group '{}': consumer '{}' is gone; its partition moved", config_.group, config_.consumer);
  work_cv_.notify_all();
  if (config_.on_lost) {
    try {
      config_.on_lost();
    } catch (...) {
    }
  }
}

bool PullConsumer::recreate_consumer(std::chrono::milliseconds wait) {
  if (config_.ordered) {
    // Never recreated: a missing partition consumer was deleted by the
    // member that took the partition over (or the stream is gone).
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = std::max<std::int64_t>(wait.count(), 1);
    ConsumerInfoHandle info;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus s = js_GetConsumerInfo(info.out(), state_->js(), state_->events_stream.c_str(),
                                            config_.consumer.c_str(), &jo, &jerr);
    if (s == NATS_OK) return true;
    if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr || jerr == JSStreamNotFoundErr) {
      lose();
      return true;
    }
    return false;
  }
  ConsumerSpec spec{state_->events_stream, config_.consumer, config_.subject,
                    "catga group '" + config_.group + "' for " + config_.type, config_.options};
  if (auto s = ensure_consumer(state_->js(), spec, wait); !s) {
    state_->note_error(s.error());
    return false;
  }
  return true;
}

bool PullConsumer::accept(MsgHandle& msg) {
  natsMsg* m = msg.get();
  const auto reply_subject = reply_of(m);
  if (reply_subject.empty()) {
    // A status message about one of our pull requests; its subject is the
    // request's reply subject, so an old request's status is told apart.
    const auto status = get_header(m, kStatusHeader);
    const int code = status ? parse_status_code(*status) : 0;
    if (code == 100) return false;  // heartbeat
    const OpenRequest* request = open_request_for(subject_of(m));
    if (request == nullptr) return false;  // a request already given up
    close_request(request);
    if (code == 404 || code == 408) {
      silent_expiries_ = 0;
      return false;
    }
    const auto description = get_header(m, kDescriptionHeader).value_or("");
    if (code == 409) {
      // Exceeded MaxWaiting, leadership change, consumer deleted...: ask again.
      log().debug("catga.nats consumer '{}': pull request ended: 409 {}", config_.consumer, description);
      if (description.find("Deleted") != std::string_view::npos) silent_expiries_ = 2;
      return false;
    }
    log().warn("catga.nats consumer '{}': unexpected pull status {} {}", config_.consumer, code, description);
    return false;
  }
  if (reply_subject.rfind("$JS.ACK.", 0) != 0) {
    log().debug("catga.nats consumer '{}': ignoring a message without an ack subject", config_.consumer);
    return false;
  }
  // A delivery keeps its original subject, so it is counted against the
  // oldest open request: the server answers a client's requests in order.
  if (open_count_ > 0) {
    if (--open_[0].remaining == 0) close_request(&open_[0]);
  }
  silent_expiries_ = 0;
  return true;
}

void PullConsumer::enqueue(std::vector<MsgHandle>& arrived) {
  if (arrived.empty()) return;
  std::size_t idle = 0;
  {
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    for (auto& m : arrived) {
      std::string key;
      if (config_.ordered) key = get_header(m.get(), wire::kOrderingKey).value_or(std::string_view{});
      queue_.push_back({std::move(m), now, std::move(key)});
    }
    idle = idle_workers_;
  }
  // Busy workers find the queue when they finish; only sleeping ones need a wake-up.
  if (idle > 0) {
    if (arrived.size() >= idle) {
      work_cv_.notify_all();
    } else {
      for (std::size_t i = 0; i < arrived.size(); ++i) work_cv_.notify_one();
    }
  }
  arrived.clear();
}

std::deque<PullConsumer::Held>::iterator PullConsumer::next_in_order() {
  if (!config_.ordered || abandon_) return queue_.begin();
  // Keys that may not start now: running, or with an earlier message queued.
  std::vector<std::string_view> blocked;
  for (const auto& slot : slots_) {
    if (slot.active) blocked.push_back(slot.key);
  }
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (std::find(blocked.begin(), blocked.end(), std::string_view(it->key)) == blocked.end()) return it;
    blocked.push_back(it->key);
  }
  return queue_.end();
}

void PullConsumer::worker_loop(std::size_t index) noexcept {
  while (true) {
    MsgHandle msg;
    bool abandon = false;
    {
      std::unique_lock lock(mu_);
      auto pick = next_in_order();
      if (pick == queue_.end() && !workers_exit_) {
        ++idle_workers_;
        work_cv_.wait(lock, [&] {
          pick = next_in_order();
          return pick != queue_.end() || workers_exit_;
        });
        --idle_workers_;
      }
      if (pick == queue_.end()) {
        if (queue_.empty()) return;
        // Stopping, with messages whose keys are still running elsewhere.
        work_cv_.wait_for(lock, std::chrono::milliseconds(10));
        continue;
      }
      msg = std::move(pick->msg);
      std::string key = std::move(pick->key);
      queue_.erase(pick);
      ++running_;
      abandon = abandon_;
      auto& slot = slots_[index];
      slot.key = std::move(key);
      if (!abandon) {
        slot.active = true;
        slot.reply.assign(reply_of(msg.get()));
        slot.last_signal = Clock::now();
      }
    }
    run_timed(std::move(msg), index, abandon);
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      --running_;
      slots_[index].active = false;
      const std::size_t busy = queue_.size() + running_;
      wake = (fetch_wake_at_ != kNotWaiting && busy <= fetch_wake_at_) || (room_waiters_ > 0 && busy == 0);
    }
    if (wake) room_cv_.notify_all();
    // A message of the key this worker held may start now.
    if (config_.ordered) work_cv_.notify_all();
  }
}

void PullConsumer::process(MsgHandle msg, std::size_t) {
  natsMsg* m = msg.get();
  const std::string_view reply_subject = reply_of(m);
  if (config_.lease_until &&
      Clock::now().time_since_epoch().count() > config_.lease_until->load(std::memory_order_relaxed)) {
    // Not renewed in time: another member may own the partition by now.
    reply(reply_subject, "-NAK");
    lose();
    return;
  }
  if (config_.skip && config_.skip(subject_of(m))) {
    reply(reply_subject, "+ACK");
    return;
  }
  const auto meta = parse_ack_reply(reply_subject, ack_prefix_);
  const int attempt =
      meta ? static_cast<int>(std::min<std::uint64_t>(meta->delivered, static_cast<std::uint64_t>(INT32_MAX))) : 1;
  const std::uint64_t sequence = meta ? meta->stream_seq : 0;
  const ConsumerMeters* meters = meters_.empty() ? nullptr : meters_for(m);
  if (meters != nullptr) {
    if (attempt > 1) meters->redelivered->inc();
    if (meters->lag != nullptr && meta) meters->lag->set(static_cast<double>(meta->pending));
  }

  Status status;
  const std::size_t max_body = config_.options.max_body_bytes;
  if (max_body > 0 && static_cast<std::size_t>(natsMsg_GetDataLength(m)) > max_body) {
    // Not decoded, not retried: it will not get smaller.
    status = make_error("too_large", "body of " + std::to_string(natsMsg_GetDataLength(m)) +
                                         " bytes exceeds max_body_bytes = " + std::to_string(max_body));
  } else if (attempt > config_.retry.max_deliver) {
    // Delivered again although the policy was used up: the handler crashed
    // or outlived ack_wait last time. Do not run it again (it may crash the
    // process again); dead-letter it.
    status = make_error(errc::handler_failed,
                        "delivered " + std::to_string(attempt) + " times, more than max_deliver = " +
                            std::to_string(config_.retry.max_deliver) +
                            ", without an ack (handler crashed or exceeded ack_wait)");
  } else {
    NatsDelivery delivery(m, attempt, sequence, [this, m] { reply(reply_of(m), "+WPI"); });
    try {
      status = handler_(delivery);
    } catch (...) {
      status = error_from_current_exception();
    }
  }
  // Ordered: retried here, held, so that nothing of its key passes it.
  int tries = attempt;
  while (config_.ordered && !status) {
    const auto again = config_.retry.redeliver_after(tries, status.error());
    if (!again) break;
    if (!wait_to_retry(*again)) {
      reply(reply_subject, "-NAK");  // stopping or moved: the next owner starts at it
      return;
    }
    ++tries;
    NatsDelivery delivery(m, tries, sequence, [this, m] { reply(reply_of(m), "+WPI"); });
    try {
      status = handler_(delivery);
    } catch (...) {
      status = error_from_current_exception();
    }
  }

  if (status) {
    reply(reply_subject, "+ACK");
    handled_.fetch_add(1, std::memory_order_relaxed);
    if (meters != nullptr) {
      meters->consumed->inc();
      if (meta) {
        const auto now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
        meters->ack_latency->observe(std::chrono::nanoseconds(now_ns - meta->timestamp_ns));
      }
    }
    return;
  }
  const Error& error = status.error();
  const auto redeliver = config_.retry.redeliver_after(tries, error);
  auto nak = [&] {
    if (meters != nullptr) meters->retried->inc();
    const auto delay = std::chrono::nanoseconds(redeliver.value_or(config_.retry.delay_after(attempt))).count();
    if (delay <= 0) {
      reply(reply_subject, "-NAK");
      return;
    }
    char body[64];
    const int n = std::snprintf(body, sizeof body, "-NAK {\"delay\":%lld}", static_cast<long long>(delay));
    reply(reply_subject, std::string_view(body, static_cast<std::size_t>(n)));
  };
  if (redeliver) {
    nak();
    return;
  }
  auto dl = dead_letter(m, meta ? &*meta : nullptr, tries, error);
  // Ordered: a nak would let the next message of its key pass; keep trying
  // to store the copy while this member owns the partition.
  while (config_.ordered && !dl && wait_to_retry(std::chrono::seconds(1))) {
    dl = dead_letter(m, meta ? &*meta : nullptr, tries, error);
  }
  if (dl) {
    reply(reply_subject, "+TERM");
    dead_lettered_.fetch_add(1, std::memory_order_relaxed);
    if (meters != nullptr) meters->dead_lettered->inc();
    log().warn("catga.nats group '{}' dead-lettered {} #{} after {} deliveries: {}: {}", config_.group,
               subject_of(m), sequence, tries, error.code, error.message);
  } else {
    // Never lose it: without a stored copy it stays in the stream.
    state_->note_error(make_error(dl.error().code, "dead-letter copy of " + config_.type + " #" +
                                                       std::to_string(sequence) + " failed: " + dl.error().message,
                                  dl.error().retryable));
    nak();
  }
}

Status PullConsumer::dead_letter(natsMsg* msg, const AckMetadata* meta, int attempt, const Error& error) {
  // First pass: the ids to keep and the size of the copied header block.
  std::string_view msg_id, kept_original_id;
  bool replayed = false;
  std::size_t header_bytes = 0;
  for_each_header(msg, [&](std::string_view k, std::string_view v) {
    if (k == wire::kMsgId) msg_id = v;
    if (k == wire::kOriginalMsgId) kept_original_id = v;
    if (k == wire::kReplayed) replayed = true;
    header_bytes += k.size() + std::min(v.size(), kMaxHeaderValue) + 4;  // "k: v\r\n"
  });
  // A replayed copy carries Nats-Msg-Id <orig>.r<seq>: the first id must survive.
  const std::string original_id(replayed && !kept_original_id.empty() ? kept_original_id : msg_id);

  const std::uint64_t sequence = meta != nullptr ? meta->stream_seq : 0;
  const std::string stream = meta != nullptr ? std::string(meta->stream) : state_->events_stream;
  // One copy per (message, group): the id dedups a retried copy, while other
  // groups dead-lettering the same message still get theirs stored.
  const std::string dlq_id = stream + ":" + std::to_string(sequence) + ":" + config_.identity;
  const std::string error_text = header_safe(error.message);
  const std::string error_code = header_safe(error.code, 128);
  const std::string deliveries = std::to_string(attempt);
  const std::string seq_text = std::to_string(sequence);
  const std::string_view original_subject = subject_of(msg);
  header_bytes += dlq_id.size() + original_id.size() + error_text.size() + error_code.size() + deliveries.size() +
                  original_subject.size() + seq_text.size() + config_.group.size() + 8 * 40;

  // A copy larger than the server's max payload could never be stored (and
  // the message would be nak'ed forever): keep the head of the body.
  auto body = body_of(msg);
  const std::size_t full_size = body.size();
  const auto max_payload = natsConnection_GetMaxPayload(state_->nc());
  bool truncated = false;
  if (max_payload > 0) {
    const auto limit = static_cast<std::size_t>(max_payload);
    const std::size_t overhead = header_bytes + kPayloadMargin;
    if (body.size() + overhead > limit) {
      body = body.substr(0, limit > overhead ? limit - overhead : 0);
      truncated = true;
    }
  }

  // An ordered partition holds several types: <prefix>.evt.<Type>.<p> → <prefix>.dlq.<Type>.
  std::string ordered_dlq;
  if (config_.ordered) {
    const std::size_t skip = state_->options.prefix.size() + 5;  // "<prefix>.evt."
    std::string_view type = original_subject.size() > skip ? original_subject.substr(skip) : std::string_view{};
    type = type.substr(0, type.find('.'));
    ordered_dlq = wire::dead_letter_subject(state_->options.prefix, type.empty() ? "unknown" : type);
  }
  const std::string& dlq_subject = config_.ordered ? ordered_dlq : config_.dead_letter_subject;
  MsgHandle copy;
  if (natsStatus s = natsMsg_Create(copy.out(), dlq_subject.c_str(), nullptr, body.data(),
                                    static_cast<int>(body.size()));
      s != NATS_OK) {
    return to_error(s, "create dead-letter message");
  }
  Status hs;
  for_each_header(msg, [&](std::string_view k, std::string_view v) {
    if (!hs) return;
    if (k == wire::kMsgId) return;
    if (is_dead_letter_header(k)) return;  // set fresh below (a replayed copy failing again)
    const std::string key(k), value = header_safe(v, kMaxHeaderValue);
    if (natsStatus s = natsMsgHeader_Add(copy.get(), key.c_str(), value.c_str()); s != NATS_OK) {
      hs = to_error(s, "copy header '" + key + "'");
    }
  });
  if (!hs) return hs;

  auto set = [&](std::string_view k, std::string_view v) {
    if (hs) hs = set_header(copy.get(), k, v);
  };
  set(wire::kMsgId, dlq_id);
  if (!original_id.empty()) set(wire::kOriginalMsgId, original_id);
  set(wire::kError, error_text);
  set(wire::kErrorCode, error_code);
  set(wire::kDeliveries, deliveries);
  set(wire::kOriginalSubject, original_subject);
  set(wire::kOriginalSeq, seq_text);
  set(wire::kGroup, config_.group);
  if (truncated) set(kBodyTruncatedHeader, std::to_string(full_size));
  if (!hs) return hs;

  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = std::max<std::int64_t>(config_.options.dead_letter_timeout.count(), 1);
  PubAckHandle ack;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_PublishMsg(ack.out(), state_->js(), copy.get(), &po, &jerr);
  if (s != NATS_OK) return to_error(s, jerr, "store dead letter on '" + dlq_subject + "'", Surface::jetstream);
  if (ack && ack.get()->Stream != nullptr && state_->dead_letter_stream != ack.get()->Stream) {
    return make_error(errc::conflict, "dead letter stored by stream '" + std::string(ack.get()->Stream) +
                                          "', not by '" + state_->dead_letter_stream + "'");
  }
  return {};
}

bool PullConsumer::wait_to_retry(std::chrono::milliseconds delay) {
  const auto until_at = Clock::now() + delay;
  auto next_take = Clock::now() + in_progress_interval_ / 2;
  while (true) {
    if (lost_.load()) return false;
    const auto now = Clock::now();
    {
      std::lock_guard lock(mu_);
      if (stop_fetching_ && now >= stop_deadline_) return false;
    }
    if (now >= until_at) return true;
    // One worker: this is the fetch thread; what arrives meanwhile is kept alive.
    if (inline_ && now >= next_take) {
      take_received();
      next_take = now + in_progress_interval_ / 2;
    }
    std::this_thread::sleep_for(std::min<Clock::duration>(until_at - now, std::chrono::milliseconds(50)));
  }
}

bool PullConsumer::on_worker_thread() const noexcept {
  const auto me = std::this_thread::get_id();
  if (inline_ && fetcher_.get_id() == me) return true;
  return std::any_of(workers_.begin(), workers_.end(), [&](const std::thread& w) { return w.get_id() == me; });
}

void PullConsumer::stop(std::chrono::milliseconds timeout) noexcept {
  if (on_worker_thread()) {
    try {
      // The helper keeps us alive until the stop (and the joins) are done.
      std::thread([self = shared_from_this(), timeout] { self->stop_now(timeout); }).detach();
      return;
    } catch (...) {
      log().error("catga.nats consumer '{}': cannot stop from its own handler", config_.consumer);
      return;
    }
  }
  stop_now(timeout);
}

void PullConsumer::stop_now(std::chrono::milliseconds timeout) noexcept {
  try {
    std::lock_guard stop_lock(stop_mu_);
    if (stopped_) return;
    stopped_ = true;
    const auto deadline = Clock::now() + timeout;
    {
      std::lock_guard lock(mu_);
      stop_fetching_ = true;
      stop_deadline_ = deadline;
    }
    room_cv_.notify_all();
    // Wakes the fetcher out of NextMsg: a message on <inbox>.0, a subject no
    // pull request replies to. It lets the open requests run out, then
    // drains the inbox.
    const std::string wake = inbox_ + ".0";
    (void)natsConnection_Publish(state_->nc(), wake.c_str(), nullptr, 0);
    if (fetcher_.joinable()) fetcher_.join();

    // Handle what was received, keeping long handlers alive, until the deadline.
    {
      std::unique_lock lock(mu_);
      while (!(queue_.empty() && running_ == 0)) {
        const auto now = Clock::now();
        if (now >= deadline) break;
        ++room_waiters_;
        room_cv_.wait_until(lock, std::min(deadline, now + in_progress_interval_));
        --room_waiters_;
        lock.unlock();
        signal_in_progress(Clock::now());
        lock.lock();
      }
      abandon_ = true;  // what is still queued is nak'ed, not handled
      workers_exit_ = true;
    }
    work_cv_.notify_all();
    // Handlers already running are awaited (their captures must outlive them).
    {
      std::unique_lock lock(mu_);
      while (!(queue_.empty() && running_ == 0)) {
        ++room_waiters_;
        room_cv_.wait_for(lock, in_progress_interval_);
        --room_waiters_;
        lock.unlock();
        signal_in_progress(Clock::now());
        lock.lock();
      }
    }
    for (auto& w : workers_) {
      if (w.joinable()) w.join();
    }
    // Drained or not, the read thread may still hold a message for it.
    impl_of(*state_->connection).retire(std::move(inbox_sub_), std::chrono::milliseconds(1000));
    log().debug("catga.nats group '{}' stopped consuming '{}'", config_.group, config_.subject);
  } catch (...) {
    log().error("catga.nats stopping consumer '{}' failed", config_.consumer);
  }
}

ConsumerHealth PullConsumer::health(std::chrono::milliseconds timeout) const {
  ConsumerHealth h;
  h.type = config_.type;
  h.group = config_.group;
  h.consumer = config_.consumer;
  h.handled = handled_.load(std::memory_order_relaxed);
  h.dead_lettered = dead_lettered_.load(std::memory_order_relaxed);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = std::max<std::int64_t>(timeout.count(), 1);
  ConsumerInfoHandle info;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s =
      js_GetConsumerInfo(info.out(), state_->js(), state_->events_stream.c_str(), config_.consumer.c_str(), &jo, &jerr);
  if (s != NATS_OK) {
    h.error = to_error(s, jerr, "consumer info of '" + config_.consumer + "'", Surface::jetstream);
    return h;
  }
  h.reachable = true;
  h.num_pending = info.get()->NumPending;
  h.num_ack_pending = static_cast<std::uint64_t>(std::max<std::int64_t>(info.get()->NumAckPending, 0));
  h.num_redelivered = static_cast<std::uint64_t>(std::max<std::int64_t>(info.get()->NumRedelivered, 0));
  return h;
}

}  // namespace catga::nats::detail
