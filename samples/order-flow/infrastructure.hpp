#pragma once
// Infrastructure: the implementations behind the ports of one process:
// in-memory (one process, tests) or NATS JetStream (separate processes).
// Services never see which one they run on.

#include <catga/key_value.hpp>
#include <catga/pipeline/idempotency_store.hpp>
#include <catga/pipeline/metrics.hpp>
#include <catga/transport.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "order_repository.hpp"
#include "service_core.hpp"

namespace order_flow {

// Messages a consumer group has not finished yet (for /metrics).
struct ConsumerLag {
  std::string type;
  std::string group;
  std::uint64_t pending = 0;
};

// The transport, KeyValue buckets and idempotency store of a process.
//
//   auto infra = order_flow::memory_infrastructure();
//   ServiceEnv env{.instance = "inventory-1", .transport = &infra->transport(),
//                  .buckets = infra->buckets(), .idempotency = infra->idempotency()};
class Infrastructure {
 public:
  virtual ~Infrastructure() = default;
  // Connects and provisions what every service needs (NATS: the connection,
  // the streams, the idempotency bucket), waiting with backoff while the
  // broker is not there yet; fails only on what waiting cannot fix, on the
  // start-up timeout or on cancel_start(). transport() and idempotency() are
  // valid once it succeeded. In memory: nothing to wait for.
  virtual catga::Status start() { return {}; }
  // Runs `step` like start() runs its own steps: again after a pause while
  // it fails retryably (a bucket or consumer the broker cannot give yet).
  virtual catga::Status wait_for(std::string_view what, const std::function<catga::Status()>& step) {
    (void)what;
    return step();
  }
  // Ends start()/wait_for() early (a stop signal): they return `cancelled`.
  virtual void cancel_start() noexcept {}
  // What start()/wait_for() are waiting for; empty when not waiting.
  virtual std::string startup_status() const { return {}; }

  virtual catga::Transport& transport() = 0;
  // The bucket `name` (opened once, then shared by every service of the process).
  virtual catga::Result<std::shared_ptr<catga::KeyValue>> bucket(std::string_view name) = 0;
  virtual std::shared_ptr<catga::IdempotencyStore> idempotency() = 0;
  // Where the order service `instance` keeps its orders: event-sourced on
  // NATS (read model in `data_dir`, empty: a temporary directory), one
  // KeyValue record per order in memory (no event store there).
  virtual catga::Result<std::shared_ptr<OrderRepository>> order_repository(const std::string& instance,
                                                                           const std::string& data_dir) = 0;
  // Empty when ready; else why not.
  virtual std::string not_ready() = 0;
  virtual std::vector<ConsumerLag> consumer_lag() = 0;
  // Stops the transport (subscriptions must be stopped first).
  virtual void stop() = 0;

  BucketOpener buckets() {
    return [this](std::string_view name) { return bucket(name); };
  }
};

// Everything in process memory: InMemoryTransport, InMemoryKeyValue buckets,
// InMemoryIdempotencyStore.
std::unique_ptr<Infrastructure> memory_infrastructure();

// Settings of the NATS infrastructure.
struct NatsSettings {
  std::string url = "nats://127.0.0.1:4222";  // or a comma-separated list (every node of a cluster)
  std::string connection_name = "order-flow";
  bool memory_storage = false;  // streams and buckets in memory instead of files
  int replicas = 1;             // stream and KV replicas (3 on a 3-node cluster)
  // Write each message to the socket at once (NatsOptions::send_asap): a
  // saga waits on dozens of round trips one after another, and nats.c's
  // flusher thread would add about 1 ms to each (docs/benchmark-history.md, "orderflow").
  bool send_asap = true;
  // How long start-up waits for the broker, JetStream, streams and buckets
  // before the process gives up; 0: as long as it takes (readiness says why).
  std::chrono::milliseconds startup_timeout{0};
  // Where the transport records its metrics (JetStreamOptions::metrics): the
  // process's /metrics registry.
  std::shared_ptr<catga::Metrics> metrics;
};

// True when this build has the JetStream transport (catga::nats).
bool nats_available() noexcept;

// JetStreamTransport, JetStream KV buckets, KvIdempotencyStore, all on one
// connection, made by start() (catga::nats::Startup). Fails when the build
// has no catga::nats or the NATS settings are invalid (no I/O here).
catga::Result<std::unique_ptr<Infrastructure>> nats_infrastructure(const NatsSettings& settings);

}  // namespace order_flow
