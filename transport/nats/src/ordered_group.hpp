#pragma once
// OrderedGroup: one member of an ordered consumer group (subscribe_ordered).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "catga/nats/health.hpp"
#include "catga/nats/key_value.hpp"
#include "catga/nats/options.hpp"
#include "catga/transport.hpp"
#include "pull_consumer.hpp"
#include "transport_state.hpp"

namespace catga::nats::detail {

// Keyed events travel on <prefix>.evt.<Type>.<p>, p = partition_of(key, P).
// The group has one durable consumer per partition, filtering
// <prefix>.evt.*.<p>, and each partition is handled by one member at a time
// (a PullConsumer in ordered mode: one message per key at a time, retries
// held in place). Which member: the KV bucket <events stream>_LEASES holds
//   <g>.members   the live members and a heartbeat counter each;
//   <g>.p.<n>     the lease of partition n: its owner's id ("" = released).
// Every quarter of the lease each member bumps its counter, drops members
// whose counter stood still for a whole lease, and computes the owner of
// every partition by rendezvous hashing over the live members. It renews
// the leases it owns and should own, releases (gracefully: its messages
// finished and acked) those it should not, and takes those it should own
// that are free or expired (the bucket's TTL is the lease).
//
// Taking partition n over (lease revision r) creates the consumer
// <g>_p<n>_e<r> at the previous consumer's ack floor + 1 and deletes the
// previous one: the old owner's pulls and acks then fail, and a lease update
// it tries fails with `conflict`; either makes it drop the partition. What
// it had handled past the ack floor is handled again (at-least-once, in
// order per key).
class OrderedGroup : public std::enable_shared_from_this<OrderedGroup> {
 public:
  struct Config {
    std::string group;
    RetryPolicy retry;
    std::size_t workers = 1;
    ConsumerOptions options;
    std::vector<TypeHandler> handlers;
  };

  static Result<std::shared_ptr<OrderedGroup>> start(std::shared_ptr<TransportState> state, Config config);
  ~OrderedGroup();
  OrderedGroup(const OrderedGroup&) = delete;
  OrderedGroup& operator=(const OrderedGroup&) = delete;

  // Finishes the owned partitions (up to `timeout`), releases their leases
  // and leaves the member list. Idempotent.
  void stop(std::chrono::milliseconds timeout) noexcept;
  // One entry per partition this member owns now.
  std::vector<ConsumerHealth> health(std::chrono::milliseconds timeout) const;
  const std::string& member_id() const noexcept { return member_; }
  const Config& config() const noexcept { return config_; }

 private:
  OrderedGroup(std::shared_ptr<TransportState> state, Config config, std::shared_ptr<KvBucket> kv);

  struct Owned {
    std::uint64_t revision = 0;  // of our lease entry
    std::shared_ptr<PullConsumer> consumer;
    std::shared_ptr<std::atomic<bool>> lost;
    std::shared_ptr<std::atomic<std::int64_t>> lease_until;  // steady ns
    // Stopping (released or lost): the consumer stops on `stopper` while the
    // lease is still renewed, so a slow handler never outlives it.
    bool stopping = false;
    std::shared_ptr<std::atomic<bool>> stopped;
    std::thread stopper;
  };
  struct Seen {
    std::uint64_t beat = 0;
    std::chrono::steady_clock::time_point since{};
  };

  void run() noexcept;
  void tick();
  // Writes our heartbeat; returns the live members (sorted), empty on failure.
  std::vector<std::string> heartbeat();
  std::string owner_of(std::uint32_t partition, const std::vector<std::string>& members) const;
  bool acquire(std::uint32_t partition);
  Result<std::shared_ptr<PullConsumer>> open_partition(std::uint32_t partition, std::uint64_t epoch, const Owned& owned);
  // Starts stopping a partition's consumer (up to `timeout`) on its own thread.
  void begin_stop(std::uint32_t partition, Owned& owned, std::chrono::milliseconds timeout);
  // Renews the leases of the partitions not lost (a conflict marks one lost).
  void renew();
  // Partitions whose consumer stopped: joined, lease released unless lost, forgotten.
  void finish_stopped();
  void leave();
  Status dispatch(Delivery& d);
  // The handler of a partition subject's type; null for a type this group
  // does not consume (logged once).
  const TypeHandler* handler_of(std::string_view subject) const;
  std::string lease_key(std::uint32_t partition) const;
  std::string consumer_prefix(std::uint32_t partition) const;

  std::shared_ptr<TransportState> state_;
  Config config_;
  std::shared_ptr<KvBucket> kv_;
  std::string member_;
  std::string token_;  // the group as a KV key / consumer name token
  std::chrono::milliseconds lease_;

  mutable std::atomic<std::uint64_t> skipped_{0};  // deliveries of keyed types not subscribed here
  std::map<std::uint32_t, Owned> owned_;  // coordinator thread (and stop(), after it ended)
  std::map<std::string, Seen> seen_;
  std::uint64_t beat_ = 0;

  mutable std::mutex mu_;  // guards stopping_ and a copy of the owned consumers for health()
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::uint32_t, std::shared_ptr<PullConsumer>> visible_;
  std::thread coordinator_;
  std::mutex stop_mu_;
  bool stopped_ = false;
};

}  // namespace catga::nats::detail
