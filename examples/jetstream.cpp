// JetStream: events over NATS JetStream with a plain consumer group and an
// ordered one. Needs a nats-server with JetStream (NATS_URL, default
// nats://127.0.0.1:4222); CTest starts one (examples/with_nats_server.sh).
// Exits non-zero if an event is missing or an order's events arrive out of
// order.
//
//   nats-server -js &
//   ./catga_jetstream
#include <catga/mediator.hpp>
#include <catga/nats/nats.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace shop {

// Keyed by order id: an ordered group sees one order's events in the order
// they were published, whatever their type.
struct OrderPlaced {
  std::string order_id;
  double amount = 0;
};
CATGA_EVENT(OrderPlaced, order_id, amount)
CATGA_ORDERING_KEY(OrderPlaced, order_id)

struct OrderShipped {
  std::string order_id;
  std::string carrier;
};
CATGA_EVENT(OrderShipped, order_id, carrier)
CATGA_ORDERING_KEY(OrderShipped, order_id)

}  // namespace shop

int main() {
  using namespace std::chrono_literals;
  // Connects (waiting for a server that is not up yet) and creates the
  // streams CATGA_EVENTS and CATGA_DLQ if they are missing.
  auto transport = catga::nats::JetStreamTransport::create(catga::nats::NatsOptions::from_env(),
                                                           catga::nats::JetStreamOptions{});
  if (!transport) {
    std::fprintf(stderr, "cannot start: %s\n", transport.error().message.c_str());
    return 1;
  }
  catga::Mediator m;
  m.attach(**transport);

  std::mutex mu;
  double billed = 0;
  std::map<std::string, std::vector<std::string>> timeline;  // per order, as the ordered group saw it

  // A plain group: each event goes to one member of "billing".
  auto billing = m.subscribe<shop::OrderPlaced>({.group = "billing"}, [&](const shop::OrderPlaced& e) {
                   std::lock_guard lock(mu);
                   billed += e.amount;
                 }).value();
  // An ordered group over both types: per order one event at a time, in order.
  auto tracking = m.subscribe_ordered<shop::OrderPlaced, shop::OrderShipped>(
                       {.group = "tracking", .workers = 4},
                       [&](const shop::OrderPlaced& e) {
                         std::lock_guard lock(mu);
                         timeline[e.order_id].push_back("placed");
                       },
                       [&](const shop::OrderShipped& e) {
                         std::lock_guard lock(mu);
                         timeline[e.order_id].push_back("shipped by " + e.carrier);
                       })
                      .value();

  const std::vector<std::string> orders{"A-1", "A-2", "A-3"};
  for (const auto& id : orders) {
    if (auto s = m.publish(shop::OrderPlaced{id, 10.0}); !s) {  // returns once the stream stored it
      std::fprintf(stderr, "publish: %s\n", s.error().message.c_str());
      return 1;
    }
  }
  for (const auto& id : orders) (void)m.publish(shop::OrderShipped{id, "post"});

  const auto deadline = std::chrono::steady_clock::now() + 30s;
  auto done = [&] {
    std::lock_guard lock(mu);
    std::size_t events = 0;
    for (const auto& [id, t] : timeline) events += t.size();
    return events == 2 * orders.size() && billed == 10.0 * static_cast<double>(orders.size());
  };
  while (!done() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);

  tracking.stop();
  billing.stop();
  (void)(*transport)->stop(10s);  // finishes what is running, then closes

  bool ok = done();
  for (const auto& id : orders) {
    const auto& t = timeline[id];
    std::printf("%s: %s, %s\n", id.c_str(), t.size() > 0 ? t[0].c_str() : "-", t.size() > 1 ? t[1].c_str() : "-");
    ok = ok && t.size() == 2 && t[0] == "placed";
  }
  std::printf("billed %.2f\n", billed);
  return ok ? 0 : 1;
}
