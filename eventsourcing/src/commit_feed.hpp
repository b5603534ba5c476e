#pragma once
// CommitFeed: a durable pull consumer on the event-store stream and the
// thread that fetches from it, batch by batch (projections, the relay).

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "catga/eventsourcing/event_store.hpp"
#include "catga/nats/native/handle.hpp"

namespace catga::eventsourcing::detail {

// A commit as delivered: decoded, with the reply subject to ack it.
struct Delivered {
  Commit commit;
  std::string reply;
  // Catga-Es-Expected-Sequence: the commit it was appended after (nullopt:
  // not written by EventStore::append).
  std::optional<std::uint64_t> expected_sequence;
};

// Pull requests are written by hand ({"batch":N,"expires":ns} to
// $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>, like catga::nats's
// PullConsumer) instead of natsSubscription_Fetch (heap overflow in 3.4.1).
// The handler gets every batch on the feed's thread; on success each message
// is acked, on failure the batch is retried in place after a pause.
// A message that does not decode (or whose upcaster fails) is stored in the
// dead-letter stream and terminated; while it cannot be stored it is not
// acked (an ordered feed stops before it, see below).
//
// An ordered feed (projections) hands over every commit matching the filter
// exactly once, in stream order, none skipped: a delivery that may have
// jumped over one (the consumer sequence is not the next one, e.g. a
// delivery lost with a crashed consumer leader, or a consumer left over from
// an earlier run) is checked against the stream (the next message matching
// the filter after the last one handed over); on a gap, or when the consumer
// is gone, the consumer is created again right after that last commit.
class CommitFeed {
 public:
  struct Config {
    std::string consumer;  // durable name
    std::string filter;    // subject filter (<prefix>.es.> or narrower)
    int batch = 256;
    std::chrono::milliseconds ack_wait{30'000};
    // The server deletes the consumer after this long without a pull
    // (0: never). For consumers that an ordered feed can create again.
    std::chrono::milliseconds inactive_threshold{0};
    // See above; `start_after` of start() is then the last commit handled.
    bool ordered = false;
    // Optional: a commit it refuses is parked in the dead letters, like one
    // that does not decode (the relay: event types that cannot be subjects).
    std::function<Status(const Commit&)> accept{};
  };
  // What a feed has done, for health reports.
  struct Health {
    std::uint64_t dead_lettered = 0;  // commits parked in the dead-letter stream
    std::uint64_t repositioned = 0;   // consumer created again after a gap or loss
    std::string last_error;           // the last failure (batch, dead letter, check), if any
  };
  using Handler = std::function<Status(std::vector<Delivered>&)>;

  // Creates the durable consumer when absent, starting after `start_after`
  // (0: the stream's beginning).
  static Status ensure_consumer(EventStore& store, const Config& config, std::uint64_t start_after);
  // Deletes it (absent is fine).
  static Status delete_consumer(EventStore& store, const std::string& consumer);
  // Its ack floor (stream sequence) and pending count; nullopt when absent.
  struct Info {
    std::uint64_t ack_floor = 0;
    std::uint64_t pending = 0;      // not yet delivered
    std::uint64_t ack_pending = 0;  // delivered, not acked
  };
  static Result<std::optional<Info>> info(EventStore& store, const std::string& consumer);
  // Stream sequence of the first message at or after `from` matching
  // `filter` (0: none), asked of the stream leader.
  static Result<std::uint64_t> next_matching(EventStore& store, const std::string& filter, std::uint64_t from);

  static Result<std::unique_ptr<CommitFeed>> start(std::shared_ptr<EventStore> store, Config config, Handler handler,
                                                   std::uint64_t start_after = 0);
  ~CommitFeed();
  CommitFeed(const CommitFeed&) = delete;
  CommitFeed& operator=(const CommitFeed&) = delete;
  // Stops fetching and waits for the thread (the batch being handled finishes).
  void stop() noexcept;
  Health health() const;

 private:
  CommitFeed(std::shared_ptr<EventStore> store, Config config, Handler handler);
  void run() noexcept;
  void pull();
  // Gathers what arrived for the open requests (up to a batch) into `batch`.
  void collect(std::vector<Delivered>& batch);
  // The ordered check of one delivery; false: stop here and reposition.
  bool in_order(std::uint64_t stream_seq, std::uint64_t consumer_seq);
  bool park(natsMsg* m, std::string_view reply, std::uint64_t stream_seq, std::uint64_t deliveries, const Error& e);
  void hand_over(std::vector<Delivered>& batch);
  void reposition();
  // A new pull inbox (the old one, if any, retired).
  Status subscribe_inbox();
  void reply(std::string_view subject, std::string_view body) noexcept;
  void note(const Error& e);

  std::shared_ptr<EventStore> store_;
  Config config_;
  Handler handler_;
  std::string next_subject_;
  std::string inbox_;
  nats::native::SubscriptionHandle sub_;
  std::atomic<bool> stop_{false};
  std::thread thread_;

  // Feed thread only.
  std::uint64_t request_id_ = 0;
  bool open_ = false;
  bool answered_ = false;  // anything arrived for the open request
  int remaining_ = 0;
  std::chrono::steady_clock::time_point request_deadline_{};
  std::chrono::milliseconds pause_{50};
  std::uint64_t cursor_ = 0;       // ordered: stream sequence of the last commit taken
  std::uint64_t expect_cseq_ = 1;  // ordered: consumer sequence of the next delivery (0: unknown)
  bool reposition_ = false;

  mutable std::mutex health_mu_;
  Health health_;
};

}  // namespace catga::eventsourcing::detail
