#pragma once
// Messages and helpers shared by the catga::nats integration tests.

#include <chrono>
#include <memory>
#include <string>

#include "catga/mediator.hpp"
#include "catga/nats/jetstream_transport.hpp"
#include "nats_server.hpp"

namespace nt {

struct OrderPlaced {
  std::string order_id;
  int amount = 0;
};
CATGA_EVENT(OrderPlaced, order_id, amount)

struct PaymentTaken {
  std::string order_id;
};
CATGA_EVENT(PaymentTaken, order_id)
CATGA_QOS(PaymentTaken, catga::QoS::exactly_once)

struct Ping {
  int n = 0;
};
CATGA_EVENT(Ping, n)
CATGA_QOS(Ping, catga::QoS::at_most_once)

struct Add {
  int a = 0;
  int b = 0;
};
CATGA_COMMAND(Add, int, a, b)

struct Fail {
  std::string why;
};
CATGA_COMMAND(Fail, void, why)

struct Slow {
  int ms = 0;
};
CATGA_QUERY(Slow, int, ms)

// Options for tests: memory streams (fast), short waits.
inline catga::nats::JetStreamOptions js_options(std::string prefix = "catga") {
  catga::nats::JetStreamOptions o;
  o.prefix = std::move(prefix);
  o.events.storage = catga::nats::StorageType::memory;
  o.dead_letters.storage = catga::nats::StorageType::memory;
  o.startup_timeout = std::chrono::seconds(30);
  o.consumer.fetch_expires = std::chrono::milliseconds(1000);
  return o;
}

inline catga::nats::NatsOptions nats_options(const catga::test::NatsServer& server, std::string name = "test") {
  catga::nats::NatsOptions o;
  o.servers = {server.url()};
  o.name = std::move(name);
  return o;
}

inline std::unique_ptr<catga::nats::JetStreamTransport> make_transport(
    const catga::test::NatsServer& server, catga::nats::JetStreamOptions js = js_options(), std::string name = "test") {
  auto t = catga::nats::JetStreamTransport::create(nats_options(server, std::move(name)), std::move(js));
  if (!t) throw catga::Exception(t.error());
  return std::move(*t);
}

inline catga::SubscribeOptions group(std::string name, std::size_t workers = 1) {
  catga::SubscribeOptions o;
  o.group = std::move(name);
  o.workers = workers;
  return o;
}

}  // namespace nt
