#pragma once
// PullConsumer: one consumer-group subscription over a durable pull consumer.

#include <nats/nats.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "catga/nats/health.hpp"
#include "catga/nats/options.hpp"
#include "ack_reply.hpp"
#include "catga/transport.hpp"
#include "handle.hpp"
#include "transport_state.hpp"

namespace catga::nats::detail {

// Fetches with pull requests it writes itself — a JSON body {"batch":N,
// "expires":ns} published to $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>
// with a reply subject on a private inbox — instead of
// natsSubscription_Fetch, whose 3.4.1 version overflows a heap array when
// more messages are queued than half the batch. Up to two requests are open
// at a time (each replies to its own <inbox>.<n>; a status message names
// the request it closes, a delivery keeps its original subject and is
// counted against the oldest open request). Each asks for a full batch when
// there is room for one (3 x batch + workers, minus what is queued, running
// or still owed by open requests), so nothing piles up, yet the server
// always holds a request while the workers handle the current batch. Status messages (404/408/409) close a request; a
// reconnect or a request that outlives its expiry is abandoned and a new one
// is sent.
//
// Acks go to each message's reply subject: "+ACK" after the handler
// succeeded, "-NAK {"delay":ns}" for a retryable failure (delay from the
// RetryPolicy), "+WPI" every in_progress_interval while a handler runs, and
// "+TERM" after a dead-letter copy was stored (non-retryable failure or
// max_deliver reached); if the copy cannot be stored the message is nak'ed.
//
// Every message held is kept alive, not only the running ones: queued and
// not yet started messages get "+WPI" too, so a slow handler never lets the
// ack wait of the messages behind it run out (that would hand them to
// another member while this one still runs them, and count a delivery
// against max_deliver that never failed). How much is held also follows the
// handlers' measured duration: about `fetch_ahead` of work per worker (never
// more than 3 x batch + workers), so a group with slow handlers keeps its
// backlog spread over its members instead of parked at one.
//
// Threads: one fetch thread and `workers` handler threads. With one worker
// (the default) the fetch thread runs the handler itself — one thread hop
// less per message — and a keeper thread sends "+WPI" for long handlers.
class PullConsumer : public std::enable_shared_from_this<PullConsumer> {
 public:
  struct Config {
    std::string type;
    std::string group;
    std::string consumer;  // durable name
    std::string subject;   // filter subject: <prefix>.evt.<type>
    std::string dead_letter_subject;
    RetryPolicy retry;
    std::size_t workers = 1;
    ConsumerOptions options;
    // One partition of an ordered group (OrderedGroup): messages of one
    // ordering key run one at a time, in stream order; a retryable failure
    // is retried here, the message held (not nak'ed, which would let later
    // ones of its key pass it); the consumer is made at `start_sequence`
    // (0: options.start) and never recreated: when it is gone the partition
    // has moved, and `on_lost` is called (once, on the fetch thread).
    bool ordered = false;
    std::uint64_t start_sequence = 0;
    std::function<void()> on_lost;
    // Ordered: until when (steady clock, ns) this member surely holds the
    // partition's lease; a message is not started past it (the member may
    // have been paused while another took the partition over).
    std::shared_ptr<std::atomic<std::int64_t>> lease_until;
    // Names this member of the group in dead-letter ids (default: consumer).
    std::string identity;
    // Ordered: true for a subject whose type this group does not consume
    // (a partition carries every keyed type). Such a message is acknowledged
    // before anything else looks at it, so it is never dead-lettered, too
    // large or not, under a group that does not handle its type.
    std::function<bool(std::string_view subject)> skip;
  };

  // Creates/binds the durable consumer and starts the threads.
  static Result<std::shared_ptr<PullConsumer>> start(std::shared_ptr<TransportState> state, Config config,
                                                     DeliveryHandler handler);
  ~PullConsumer();
  PullConsumer(const PullConsumer&) = delete;
  PullConsumer& operator=(const PullConsumer&) = delete;

  // Stops fetching, lets the open pull requests run out (up to
  // fetch_expires) while handling what they deliver, handles what was
  // received (past `timeout` the rest is nak'ed), waits for running handlers. Idempotent; thread-safe. Called
  // from one of its own handlers it cannot wait for itself: it returns at
  // once and a helper thread finishes the stop.
  void stop(std::chrono::milliseconds timeout) noexcept;
  // Consumer info from the server plus local counters.
  ConsumerHealth health(std::chrono::milliseconds timeout) const;
  const Config& config() const noexcept { return config_; }

 private:
  PullConsumer(std::shared_ptr<TransportState> state, Config config, DeliveryHandler handler);

  struct Running {  // a handler call in progress, for "+WPI"
    std::string reply;
    std::string key;  // ordered: the ordering key it holds
    std::chrono::steady_clock::time_point last_signal;
    bool active = false;
  };
  // A message received and not started yet; `last_signal` is when it
  // arrived or last got "+WPI".
  struct Held {
    MsgHandle msg;
    std::chrono::steady_clock::time_point last_signal;
    std::string key;  // ordered, several workers: its ordering key
  };

  void stop_now(std::chrono::milliseconds timeout) noexcept;
  bool on_worker_thread() const noexcept;
  void fetch_loop() noexcept;
  void worker_loop(std::size_t index) noexcept;
  void process(MsgHandle msg, std::size_t index);
  // Ordered, several workers: the first queued message whose key is neither
  // running nor behind an earlier queued one (queue_.end() when none).
  std::deque<Held>::iterator next_in_order();
  // Ordered: waits `delay` before a local retry, keeping the held messages
  // alive; false when the consumer stops past its deadline or is lost.
  bool wait_to_retry(std::chrono::milliseconds delay);
  // Ordered: the consumer is gone; stop asking and tell the group.
  void lose() noexcept;
  // process() (or "-NAK" when abandoned) with every exception logged.
  void run_guarded(MsgHandle msg, std::size_t index, bool abandon) noexcept;
  // Fetch thread, one worker: handles `arrived` in order, requesting the
  // next batch meanwhile.
  void handle_here(std::vector<MsgHandle>& arrived, bool stopping);
  // Fetch thread, one worker: moves what nats.c already received for the
  // inbox into inline_held_, so it is kept alive while earlier messages run.
  void take_received();
  // Fetch thread: what nats.c already holds for the inbox (at most `most`),
  // through accept(), appended to `into`.
  void read_pending(std::vector<MsgHandle>& into, int most);
  // Runs `msg` (see run_guarded) and folds its duration into handler_ns_.
  void run_timed(MsgHandle msg, std::size_t index, bool abandon) noexcept;
  // Most messages to hold at once (queued, running, owed): fetch_ahead of
  // work per worker at the measured handler time, within [workers + 1,
  // 3 x batch + workers].
  std::size_t limit() const noexcept;
  void keeper_loop() noexcept;
  // Fetch thread: sends the next pull request when `held` messages (queued,
  // running or about to run) leave room for one; false when they do not.
  bool request_more(std::size_t held, bool idle, std::chrono::steady_clock::time_point now);
  // Fetch thread: may another pull request be sent now?
  bool may_request(bool stopping, std::chrono::steady_clock::time_point now) const noexcept {
    return !stopping && !verify_consumer_ && !lost_ && open_count_ < kMaxOpenRequests && now >= retry_at_;
  }
  std::size_t wanted_room(bool idle) const noexcept;
  // Open pull requests (fetch thread): the one `subject` (<inbox>.<n>)
  // answers, or nullptr; closing one forgets what it still owed.
  struct OpenRequest {
    std::uint64_t id = 0;
    std::size_t remaining = 0;
    std::chrono::steady_clock::time_point deadline{};
  };
  OpenRequest* open_request_for(std::string_view subject) noexcept;
  void close_request(const OpenRequest* request) noexcept;
  void close_all_requests() noexcept { open_count_ = 0; }
  // Messages the open requests may still deliver.
  std::size_t owed() const noexcept {
    std::size_t n = 0;
    for (std::size_t i = 0; i < open_count_; ++i) n += open_[i].remaining;
    return n;
  }
  // Closes requests past their deadline; true when one was.
  bool expire_requests(std::chrono::steady_clock::time_point now) noexcept;
  void back_off(std::chrono::steady_clock::time_point now) noexcept;
  // Fetch thread: true for a delivery to hand to the workers; a status
  // message closes the request it answers.
  bool accept(MsgHandle& msg);
  void enqueue(std::vector<MsgHandle>& arrived);
  bool send_pull(int batch);
  // Creates the durable consumer again if it is gone; false when the server
  // could not say.
  bool recreate_consumer(std::chrono::milliseconds wait);
  void signal_in_progress(std::chrono::steady_clock::time_point now);
  Status dead_letter(natsMsg* msg, const AckMetadata* meta, int attempt, const Error& error);
  void reply(std::string_view subject, std::string_view body) noexcept;

  std::shared_ptr<TransportState> state_;
  Config config_;
  DeliveryHandler handler_;
  std::string next_subject_;  // $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>
  std::string inbox_;         // _INBOX.<nuid>; requests reply to <inbox>.<n>
  SubscriptionHandle inbox_sub_;
  std::chrono::milliseconds in_progress_interval_;

  // Guarded by mu_.
  mutable std::mutex mu_;
  std::condition_variable work_cv_;   // workers: queue or stop
  std::condition_variable room_cv_;   // fetcher: room freed or stop
  std::deque<Held> queue_;
  // One worker: the burst being handled on the fetch thread; entries from
  // inline_next_ on are not started yet.
  std::vector<Held> inline_held_;
  std::size_t inline_next_ = 0;
  std::size_t running_ = 0;
  std::size_t idle_workers_ = 0;  // waiting on work_cv_
  std::size_t room_waiters_ = 0;  // stop() waiting on room_cv_ for the queue to empty
  // The fetcher waits on room_cv_ until queue_ + running_ is at most this
  // (kNotWaiting: it is not waiting); workers wake it only then, not after
  // every message.
  static constexpr std::size_t kNotWaiting = static_cast<std::size_t>(-1);
  std::size_t fetch_wake_at_ = kNotWaiting;
  std::vector<Running> slots_;
  bool stop_fetching_ = false;
  std::chrono::steady_clock::time_point stop_deadline_{};
  bool abandon_ = false;   // past the stop timeout: nak instead of handling
  bool workers_exit_ = false;

  std::size_t max_limit_ = 0;  // most messages held at once (3 x batch + workers)
  // Handler duration, moving average (ns); 0 until one finished.
  std::atomic<std::int64_t> handler_ns_{0};
  bool inline_ = false;    // one worker: handlers run on the fetch thread
  AckPrefix ack_prefix_;   // "$JS.ACK.<stream>.<consumer>.": our deliveries' reply subjects

  // Fetch thread only.
  bool verify_consumer_ = false;  // after a reconnect: is the consumer still there?
  std::chrono::steady_clock::time_point retry_at_{};
  std::chrono::milliseconds pause_{50};
  // Two open requests keep the server busy while the last messages of one
  // are handled (raw nats.c with one request in flight loses ~20 % of its
  // pull + ack rate on the bench machine).
  static constexpr std::size_t kMaxOpenRequests = 2;
  std::uint64_t request_id_ = 0;
  std::array<OpenRequest, kMaxOpenRequests> open_{};  // oldest first
  std::size_t open_count_ = 0;
  int silent_expiries_ = 0;

  // Metrics of each type this consumer reads (one, or an ordered
  // partition's types); empty without a registry.
  struct TypeMeters {
    std::string type;
    ConsumerMeters meters;
  };
  std::vector<TypeMeters> meters_;
  const ConsumerMeters* meters_for(natsMsg* msg) const noexcept;

  std::atomic<bool> lost_{false};  // ordered: the consumer is gone
  std::atomic<std::uint64_t> handled_{0};
  std::atomic<std::uint64_t> dead_lettered_{0};

  std::mutex stop_mu_;
  bool stopped_ = false;
  std::thread fetcher_;
  std::vector<std::thread> workers_;
};

}  // namespace catga::nats::detail
