#pragma once
// CommitFeed: a durable pull consumer on the event-store stream and the
// thread that fetches from it, batch by batch (projections, the relay).

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "catga/eventsourcing/event_store.hpp"
#include "handle.hpp"

namespace catga::eventsourcing::detail {

// A commit as delivered: decoded, with the reply subject to ack it.
struct Delivered {
  Commit commit;
  std::string reply;
};

// Pull requests are written by hand ({"batch":N,"expires":ns} to
// $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>, like catga::nats's
// PullConsumer) instead of natsSubscription_Fetch (heap overflow in 3.4.1).
// The handler gets every batch in stream order on the feed's thread; on
// success each message is acked, on failure nak'ed (redelivered) after a
// pause. Undecodable messages are logged and terminated.
class CommitFeed {
 public:
  struct Config {
    std::string consumer;  // durable name
    std::string filter;    // subject filter (<prefix>.es.> or narrower)
    int batch = 256;
    std::chrono::milliseconds ack_wait{30'000};
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

  static Result<std::unique_ptr<CommitFeed>> start(std::shared_ptr<EventStore> store, Config config, Handler handler);
  ~CommitFeed();
  CommitFeed(const CommitFeed&) = delete;
  CommitFeed& operator=(const CommitFeed&) = delete;
  // Stops fetching and waits for the thread (the batch being handled finishes).
  void stop() noexcept;

 private:
  CommitFeed(std::shared_ptr<EventStore> store, Config config, Handler handler);
  void run() noexcept;
  void reply(const std::string& subject, std::string_view body) noexcept;

  std::shared_ptr<EventStore> store_;
  Config config_;
  Handler handler_;
  std::string next_subject_;
  std::string inbox_;
  nats::detail::SubscriptionHandle sub_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace catga::eventsourcing::detail
