#pragma once
// The fault tests' domain: the event they send and one consuming member.
// No doctest here: the worker processes use it too.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "catga/mediator.hpp"
#include "catga/nats/jetstream_transport.hpp"
#include "catga/nats/kv_idempotency_store.hpp"
#include "catga/pipeline/idempotency.hpp"

namespace fault {

using namespace std::chrono_literals;

// The event every fault test sends: exactly-once, so duplicates must not be
// applied twice.
struct Credit {
  std::string id;
  int n = 0;
};
CATGA_EVENT(Credit, id, n)
CATGA_QOS(Credit, catga::QoS::exactly_once)

inline std::string credit_id(int i) { return "credit-" + std::to_string(i); }

inline catga::nats::JetStreamOptions durable_js(int replicas = 1) {
  catga::nats::JetStreamOptions js;
  js.events.storage = catga::nats::StorageType::file;
  js.dead_letters.storage = catga::nats::StorageType::file;
  js.events.replicas = replicas;
  js.dead_letters.replicas = replicas;
  js.startup_timeout = 30s;
  js.publish_timeout = 3s;
  js.consumer.fetch_expires = 1000ms;
  js.consumer.ack_wait = 4s;  // work held by a dead member comes back within seconds
  return js;
}

inline catga::nats::NatsOptions nats_at(std::vector<std::string> urls, std::string name) {
  catga::nats::NatsOptions o;
  o.servers = std::move(urls);
  o.name = std::move(name);
  o.max_reconnect_wait = 500ms;  // find the restarted server / new leader quickly
  return o;
}

// Keeps trying to store an outcome while the store is unreachable (a broker
// outage), for up to `patience`: the owner knows its effect was applied, and
// while its claim's lease runs nobody else may apply it. IdempotencyBehavior
// itself tries once and logs "outcome ... not stored"; then the redelivery
// after the lease applies the effect again (see docs/guarantees.md, "Under
// faults").
class PatientStore final : public catga::IdempotencyStore {
 public:
  PatientStore(std::shared_ptr<catga::IdempotencyStore> inner, std::chrono::milliseconds patience)
      : inner_(std::move(inner)), patience_(patience) {}
  catga::Result<catga::IdempotencyClaim> claim(std::string_view key, duration lease) override {
    return inner_->claim(key, lease);
  }
  catga::Result<catga::IdempotencyClaim> wait(std::string_view key, duration lease, time_point deadline) override {
    return inner_->wait(key, lease, deadline);
  }
  catga::Status complete(std::string_view key, std::uint64_t token, catga::IdempotencyOutcome outcome,
                         duration ttl) override {
    const auto give_up = std::chrono::steady_clock::now() + patience_;
    while (true) {
      catga::Status s = inner_->complete(key, token, outcome, ttl);
      if (s || !s.error().retryable || std::chrono::steady_clock::now() >= give_up) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the broker is coming back
    }
  }
  catga::Status release(std::string_view key, std::uint64_t token) override { return inner_->release(key, token); }

 private:
  std::shared_ptr<catga::IdempotencyStore> inner_;
  std::chrono::milliseconds patience_;
};

// One consuming member: connection, KV idempotency store, transport and a
// mediator with IdempotencyBehavior, running `effect` for each Credit.
struct Member {
  using Effect = std::function<void(const Credit&)>;

  Member(std::vector<std::string> urls, const std::string& name, Effect effect,
         catga::nats::JetStreamOptions js = durable_js(), std::size_t workers = 4,
         std::chrono::milliseconds lease = 4s) {
    conn = catga::nats::Connection::connect(nats_at(std::move(urls), name)).value();
    catga::nats::KvIdempotencyOptions kv;
    kv.bucket = "fault_idem";
    kv.replicas = js.events.replicas;
    store = catga::nats::KvIdempotencyStore::create(conn, kv).value();
    transport = catga::nats::JetStreamTransport::create(conn, js).value();
    mediator.attach(*transport);
    // The claim outlives a broker outage (its owner keeps completing it);
    // a short lease lets a crashed process's claims be taken over quickly.
    auto idem = catga::nats::exactly_once_idempotency(std::make_shared<PatientStore>(store, lease * 3 / 4));
    idem.lease = lease;
    idem.wait_timeout = 5s;
    mediator.use(std::make_shared<catga::IdempotencyBehavior>(idem));
    catga::SubscribeOptions opts;
    opts.group = "ledger";
    opts.workers = workers;
    opts.retry.max_deliver = 1000;  // an outage must not dead-letter anything
    opts.retry.backoff = {50ms, 200ms, 500ms};
    sub = mediator.subscribe<Credit>(opts, std::move(effect)).value();
  }
  ~Member() {
    sub.stop();
    if (transport) (void)transport->stop(5s);
  }
  Member(const Member&) = delete;
  Member& operator=(const Member&) = delete;

  std::shared_ptr<catga::nats::Connection> conn;
  std::shared_ptr<catga::nats::KvIdempotencyStore> store;
  std::unique_ptr<catga::nats::JetStreamTransport> transport;
  catga::Mediator mediator;
  catga::Subscription sub;
};

}  // namespace fault
