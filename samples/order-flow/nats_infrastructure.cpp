// The NATS side of Infrastructure; built only with catga::nats
// (ORDER_FLOW_WITH_NATS), otherwise nats_infrastructure() says so.
#include "infrastructure.hpp"

#ifdef ORDER_FLOW_WITH_NATS
#include <catga/nats/connection.hpp>
#include <catga/nats/jetstream_transport.hpp>
#include <catga/nats/key_value.hpp>
#include <catga/nats/kv_idempotency_store.hpp>
#include <catga/nats/startup.hpp>
#include <map>
#include <mutex>
#include <string>
#include <vector>
#endif
#ifdef ORDER_FLOW_WITH_ES
#include "es_order_repository.hpp"
#endif

namespace order_flow {

#ifdef ORDER_FLOW_WITH_NATS
namespace {

namespace cn = catga::nats;

class NatsInfrastructure final : public Infrastructure {
 public:
  NatsInfrastructure(NatsSettings settings, cn::NatsOptions options, cn::StartupOptions startup)
      : settings_(std::move(settings)), options_(std::move(options)), startup_(startup) {}

  // [snippet:order-flow-startup]
  catga::Status start() override {
    auto connection = startup_.connect(options_);
    if (!connection) return std::move(connection).error();
    connection_ = std::move(*connection);
    cn::JetStreamOptions js;
    if (settings_.memory_storage) {
      js.events.storage = cn::StorageType::memory;
      js.dead_letters.storage = cn::StorageType::memory;
    }
    js.events.replicas = settings_.replicas;
    js.dead_letters.replicas = settings_.replicas;
    js.startup_timeout = startup_.options().attempt_timeout;  // one try; startup_ tries again
    js.metrics = settings_.metrics;  // published, consumed, dead-lettered, lag... in /metrics
    auto transport = startup_.run("the JetStream streams", [&] { return cn::JetStreamTransport::create(connection_, js); });
    if (!transport) return std::move(transport).error();
    transport_ = std::move(*transport);
    cn::KvIdempotencyOptions idem;
    idem.storage = settings_.memory_storage ? cn::StorageType::memory : cn::StorageType::file;
    idem.replicas = settings_.replicas;
    auto store = startup_.run("the idempotency bucket", [&] { return cn::KvIdempotencyStore::create(connection_, idem); });
    if (!store) return std::move(store).error();
    idempotency_ = std::move(*store);
    return {};
  }
  // [/snippet:order-flow-startup]

  catga::Status wait_for(std::string_view what, const std::function<catga::Status()>& step) override {
    return startup_.run(what, step);
  }
  void cancel_start() noexcept override { startup_.cancel(); }
  std::string startup_status() const override { return startup_.status(); }

  catga::Transport& transport() override { return *transport_; }

  catga::Result<std::shared_ptr<catga::KeyValue>> bucket(std::string_view name) override {
    std::lock_guard lock(mutex_);
    auto it = buckets_.find(name);
    if (it != buckets_.end()) return it->second;
    // [snippet:order-flow-kv-bucket]
    cn::KvBucketOptions o;
    o.bucket = std::string(name);
    o.storage = settings_.memory_storage ? cn::StorageType::memory : cn::StorageType::file;
    o.replicas = settings_.replicas;
    auto opened = cn::KvBucket::open(connection_, o);
    // [/snippet:order-flow-kv-bucket]
    if (!opened) return std::move(opened).error();
    std::shared_ptr<catga::KeyValue> kv = std::move(*opened);
    buckets_.emplace(std::string(name), kv);
    return kv;
  }

  std::shared_ptr<catga::IdempotencyStore> idempotency() override { return idempotency_; }

  catga::Result<std::shared_ptr<OrderRepository>> order_repository(const std::string& instance,
                                                                   const std::string& data_dir) override {
#ifdef ORDER_FLOW_WITH_ES
    EsOrderSettings es;
    es.instance = instance;
    es.data_dir = data_dir;
    es.stream.storage = settings_.memory_storage ? cn::StorageType::memory : cn::StorageType::file;
    es.stream.replicas = settings_.replicas;
    return event_sourced_orders(connection_, std::move(es));
#else
    (void)instance;
    (void)data_dir;
    auto orders = bucket("orders");
    if (!orders) return std::move(orders).error();
    return kv_order_repository(std::move(*orders));
#endif
  }

  std::string not_ready() override {
    if (!transport_) return "starting";
    auto h = transport_->health(std::chrono::milliseconds(1000));
    if (h.ready()) return {};
    if (h.connection != cn::ConnectionState::connected) {
      return "NATS connection is " + std::string(cn::to_string(h.connection));
    }
    if (!h.stream_reachable) return "the events stream is not reachable";
    return "transport stopped";
  }

  std::vector<ConsumerLag> consumer_lag() override {
    std::vector<ConsumerLag> out;
    if (!transport_) return out;
    for (const auto& c : transport_->health(std::chrono::milliseconds(1000)).consumers) {
      out.push_back({c.type, c.group, c.lag()});
    }
    return out;
  }

  void stop() override {
    startup_.cancel();
    if (transport_) (void)transport_->stop(std::chrono::seconds(10));
    // Ours: the transport only closes connections it made.
    if (connection_) (void)connection_->close(std::chrono::seconds(5));
  }

 private:
  NatsSettings settings_;
  cn::NatsOptions options_;
  cn::Startup startup_;
  std::shared_ptr<cn::Connection> connection_;
  std::unique_ptr<cn::JetStreamTransport> transport_;
  std::shared_ptr<catga::IdempotencyStore> idempotency_;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<catga::KeyValue>, std::less<>> buckets_;
};

}  // namespace

bool nats_available() noexcept { return true; }

catga::Result<std::unique_ptr<Infrastructure>> nats_infrastructure(const NatsSettings& settings) {
  cn::NatsOptions defaults;
  // "nats://a:4222, nats://b:4222" → both URLs: NATS_URL / --nats-url may name
  // every node of a cluster, so the connection fails over between them.
  defaults.servers = cn::split_server_urls(settings.url);
  defaults.name = settings.connection_name;
  defaults.send_asap = settings.send_asap;
  cn::NatsOptions options = cn::NatsOptions::from_env(defaults);
  options.servers = defaults.servers;  // the flag (or NATS_URL, read by main) wins
  // Settings that cannot work fail the process now instead of being waited on.
  if (auto s = options.validate(); !s) return std::move(s).error();
  cn::StartupOptions startup;
  startup.timeout = settings.startup_timeout;
  if (auto s = startup.validate(); !s) return std::move(s).error();
  return std::unique_ptr<Infrastructure>(std::make_unique<NatsInfrastructure>(settings, std::move(options), startup));
}

#else

bool nats_available() noexcept { return false; }

catga::Result<std::unique_ptr<Infrastructure>> nats_infrastructure(const NatsSettings&) {
  return catga::make_error(catga::errc::unavailable,
                           "this build has no NATS transport (catga::nats was not built); use --transport memory");
}

#endif

}  // namespace order_flow
