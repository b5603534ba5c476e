// The NATS side of Infrastructure; built only with catga::nats
// (ORDER_FLOW_WITH_NATS), otherwise nats_infrastructure() says so.
#include "infrastructure.hpp"

#ifdef ORDER_FLOW_WITH_NATS
#include <catga/nats/connection.hpp>
#include <catga/nats/jetstream_transport.hpp>
#include <catga/nats/key_value.hpp>
#include <catga/nats/kv_idempotency_store.hpp>
#include <map>
#include <mutex>
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
  NatsInfrastructure(NatsSettings settings, std::shared_ptr<cn::Connection> connection,
                     std::unique_ptr<cn::JetStreamTransport> transport,
                     std::shared_ptr<catga::IdempotencyStore> idempotency)
      : settings_(std::move(settings)),
        connection_(std::move(connection)),
        transport_(std::move(transport)),
        idempotency_(std::move(idempotency)) {}

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
    for (const auto& c : transport_->health(std::chrono::milliseconds(1000)).consumers) {
      out.push_back({c.type, c.group, c.lag()});
    }
    return out;
  }

  void stop() override {
    (void)transport_->stop(std::chrono::seconds(10));
    (void)connection_->close(std::chrono::seconds(5));  // ours: the transport only closes connections it made
  }

 private:
  NatsSettings settings_;
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
  defaults.servers = {settings.url};
  defaults.name = settings.connection_name;
  cn::NatsOptions options = cn::NatsOptions::from_env(defaults);
  options.servers = {settings.url};  // the flag (or NATS_URL, read by main) wins
  auto connection = cn::Connection::connect(options);
  if (!connection) return std::move(connection).error();
  if (auto s = (*connection)->wait_connected(settings.startup_timeout); !s) return s.error();
  cn::JetStreamOptions js;
  if (settings.memory_storage) {
    js.events.storage = cn::StorageType::memory;
    js.dead_letters.storage = cn::StorageType::memory;
  }
  js.events.replicas = settings.replicas;
  js.dead_letters.replicas = settings.replicas;
  js.startup_timeout = settings.startup_timeout;
  auto transport = cn::JetStreamTransport::create(*connection, js);
  if (!transport) return std::move(transport).error();
  cn::KvIdempotencyOptions idem;
  idem.storage = settings.memory_storage ? cn::StorageType::memory : cn::StorageType::file;
  idem.replicas = settings.replicas;
  auto store = cn::KvIdempotencyStore::create(*connection, idem);
  if (!store) return std::move(store).error();
  return std::unique_ptr<Infrastructure>(
      std::make_unique<NatsInfrastructure>(settings, *connection, std::move(*transport), std::move(*store)));
}

#else

bool nats_available() noexcept { return false; }

catga::Result<std::unique_ptr<Infrastructure>> nats_infrastructure(const NatsSettings&) {
  return catga::make_error(catga::errc::unavailable,
                           "this build has no NATS transport (catga::nats was not built); use --transport memory");
}

#endif

}  // namespace order_flow
