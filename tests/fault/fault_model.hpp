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

// One consuming member: connection, KV idempotency store, transport and a
// mediator with IdempotencyBehavior, running `effect` for each Credit.
struct Member {
  using Effect = std::function<void(const Credit&)>;

  // The fault suite's settings: short ack wait and lease, many deliveries.
  Member(std::vector<std::string> urls, const std::string& name, Effect effect,
         catga::nats::JetStreamOptions js = durable_js(), std::size_t workers = 4,
         std::chrono::milliseconds lease = 4s) {
    conn = catga::nats::Connection::connect(nats_at(std::move(urls), name)).value();
    catga::nats::KvIdempotencyOptions kv;
    kv.bucket = "fault_idem";
    kv.replicas = js.events.replicas;
    // The 2.9 run of the R3 tests too: they check what the framework does
    // when members and nodes die; the lost conditional write 2.9 can make
    // during a leader change (nats-server issue 4320) is a risk taken here.
    kv.allow_replicated_before_nats_2_10 = true;
    store = catga::nats::KvIdempotencyStore::create(conn, kv).value();
    transport = catga::nats::JetStreamTransport::create(conn, js).value();
    mediator.attach(*transport);
    // A short lease lets a crashed process's claims be taken over quickly;
    // IdempotencyBehavior keeps storing an outcome through a broker outage
    // for 3/4 of it.
    auto idem = catga::nats::exactly_once_idempotency(store);
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

  // What a user gets without tuning anything: default connection, transport,
  // idempotency (lease, wait) and subscription options; only the group and
  // bucket are named.
  struct LibraryDefaults {};
  Member(LibraryDefaults, std::vector<std::string> urls, const std::string& name, Effect effect) {
    catga::nats::NatsOptions o;
    o.servers = std::move(urls);
    o.name = name;
    conn = catga::nats::Connection::connect(o).value();
    catga::nats::KvIdempotencyOptions kv;
    kv.bucket = "fault_idem";
    store = catga::nats::KvIdempotencyStore::create(conn, kv).value();
    transport = catga::nats::JetStreamTransport::create(conn, catga::nats::JetStreamOptions{}).value();
    mediator.attach(*transport);
    mediator.use(std::make_shared<catga::IdempotencyBehavior>(catga::nats::exactly_once_idempotency(store)));
    sub = mediator.subscribe<Credit>(catga::SubscribeOptions{.group = "ledger"}, std::move(effect)).value();
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
