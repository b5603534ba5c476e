#pragma once
// Private state of InMemoryTransport: topics, consumer groups, members
// (subscriptions with their worker threads), the redelivery timer and the
// dead letters. One mutex guards all of it; handlers run without it.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <set>
#include <vector>

#include "catga/transport/in_memory.hpp"

namespace catga::detail {

using InMemoryClock = std::chrono::steady_clock;

// A stored message; immutable once published, shared by every group's copy.
struct InMemoryMessage {
  std::string type;  // events: the message type (ordered groups span several)
  std::string subject;
  Headers headers;
  std::string body;
  std::uint64_t sequence = 0;  // per type; 0 for requests
};

// The caller side of one request(), waiting for the first reply.
struct PendingRequest {
  std::condition_variable cv;
  std::optional<Result<std::string>> outcome;
  std::size_t open_groups = 0;  // services that may still answer
};

// One group's copy of a message.
struct QueueItem {
  std::shared_ptr<const InMemoryMessage> message;
  int deliveries = 0;                       // handler calls made so far
  std::shared_ptr<PendingRequest> request;  // requests only
};

struct Member;

// A consumer group (events) or a service queue group (requests). Durable:
// it lives as long as the transport, with or without members.
//
// An ordered group (subscribe_ordered) consumes several types and hands a
// member the oldest ready item whose ordering key is not `busy` (running,
// handed over, or waiting for a retry), so a key's items run one at a time,
// in publish order, while other keys go on.
struct Group {
  std::string type;  // ordered groups: their types, comma-separated
  std::string name;
  bool service = false;
  bool ordered = false;
  std::vector<std::string> types;          // ordered groups: sorted
  std::set<std::string, std::less<>> busy;  // ordered groups: keys held back
  std::deque<QueueItem> ready;
  std::size_t delayed = 0;
  std::size_t in_flight = 0;
  std::vector<Member*> members;
  std::size_t next_member = 0;  // round-robin cursor
  std::uint64_t delivered = 0;
  std::uint64_t acked = 0;
  std::uint64_t redelivered = 0;
  std::uint64_t dead_lettered = 0;

  std::size_t unfinished() const noexcept { return ready.size() + delayed + in_flight; }
};

// One subscription: its handler and worker threads. Items are handed to a
// member only when one of its workers is idle, through `inbox`.
struct Member {
  Group* group = nullptr;
  DeliveryHandler on_event;
  std::vector<TypeHandler> typed;  // ordered groups: a handler per type
  RequestHandler on_request;
  RetryPolicy retry;
  std::condition_variable cv;  // inbox filled or stopping
  std::deque<QueueItem> inbox;
  std::size_t idle = 0;  // workers without an item
  bool stopping = false;
  bool stopped = false;  // threads joined
  std::condition_variable stopped_cv;
  std::vector<std::thread> threads;
};

// The messages of one type and the groups consuming them.
struct Topic {
  std::uint64_t last_sequence = 0;
  std::map<std::string, std::unique_ptr<Group>, std::less<>> groups;
  std::vector<Group*> ordered;  // ordered groups of this type (owned by the core)
};

struct DelayedItem {
  Group* group;
  QueueItem item;
};

struct InMemoryCore : std::enable_shared_from_this<InMemoryCore> {
  explicit InMemoryCore(InMemoryTransportOptions opts);
  ~InMemoryCore();

  // Stores `message` in every group of `type`.
  Status store_event(std::string_view type, std::shared_ptr<InMemoryMessage> message);
  Result<std::string> send_request(std::string_view type, std::shared_ptr<InMemoryMessage> message,
                                   InMemoryClock::time_point deadline);
  // Adds a member to group `group` of `type`; exactly one handler is set.
  Result<Subscription> join(bool service, std::string_view type, std::string_view group, std::size_t workers,
                            RetryPolicy retry, DeliveryHandler on_event, RequestHandler on_request);
  // Adds a member to ordered group `group` of the handlers' types.
  Result<Subscription> join_ordered(std::string_view group, std::size_t workers, RetryPolicy retry,
                                    std::vector<TypeHandler> handlers);
  // Stops deliveries to `m`, returns its unstarted items to the group and
  // waits for its workers (except the calling thread, if it is one).
  void stop_member(const std::shared_ptr<Member>& m) noexcept;
  void shutdown() noexcept;

  // --- with `mu` held -------------------------------------------------------
  void pump(Group& g);
  // The index in g.ready of the item to hand out next, or g.ready.size().
  std::size_t next_ready(const Group& g) const;
  // Back into g.ready, as the next of its key (ordered) or at the end.
  void requeue(Group& g, QueueItem item);
  // Ordered groups: the item's key is no longer held back.
  void release_key(Group& g, const QueueItem& item);
  void finish_event(Group& g, const Member& m, QueueItem item, Status status);
  void finish_request(Group& g, QueueItem& item, std::string reply);
  void add_dead_letter(const Group& g, const QueueItem& item, const Error& error);
  void settle_event() noexcept;
  void drop_service_backlog(Group& g);
  GroupStats stats_of(const Group& g) const;
  // The ordering key of an item of an ordered group ("" when it has none).
  static std::string_view key_of(const QueueItem& item) noexcept;

  // Starts m's worker threads and adds it to the group found or made by
  // `find_group` (called with `mu` held; returns null with `error` set to refuse).
  Result<Subscription> start_member(std::shared_ptr<Member> m, std::size_t workers, std::string_view what,
                                    const std::function<Group*(Error& error)>& find_group);
  void run_worker(const std::shared_ptr<Member>& m) noexcept;
  void run_timer() noexcept;

  const InMemoryTransportOptions options;

  mutable std::mutex mu;
  bool closed = false;
  std::map<std::string, Topic, std::less<>> events;
  std::map<std::string, Topic, std::less<>> services;
  std::map<std::string, std::unique_ptr<Group>, std::less<>> ordered_groups;  // by group name
  std::vector<std::shared_ptr<Member>> members;  // live ones
  std::vector<PendingRequest*> waiting_requests;

  std::multimap<InMemoryClock::time_point, DelayedItem> timers;
  std::condition_variable timer_cv;
  bool timer_stop = false;
  std::thread timer_thread;

  std::deque<DeadLetter> dead_letters;  // ascending sequence
  std::uint64_t last_dead_letter = 0;

  std::size_t outstanding = 0;  // unfinished event copies, for wait_idle
  mutable std::condition_variable idle_cv;

  // Workers that stopped their own subscription cannot join themselves;
  // shutdown() joins them.
  std::vector<std::thread> orphans;
  std::mutex shutdown_mu;
  bool shut_down = false;
};

// Errors shared by the implementation files.
Error closed_error();

}  // namespace catga::detail
