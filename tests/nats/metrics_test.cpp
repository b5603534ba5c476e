// The JetStream transport's metrics (JetStreamOptions::metrics): published,
// consumed, retried, redelivered and dead-lettered per type and group, lag,
// publish/ack latency, request outcomes on both sides, and nothing at all
// without a registry. Values are read from the Prometheus text, as a scrape
// would see them.
#include <doctest/doctest.h>

#include <atomic>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "catga/pipeline/metrics.hpp"
#include "nats_server.hpp"
#include "test_messages.hpp"
#include "wait_for.hpp"

using catga::test::wait_for;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace mt {
// Keyed events for an ordered group over two types.
struct Shipped {
  std::string order_id;
};
CATGA_EVENT(Shipped, order_id)
CATGA_ORDERING_KEY(Shipped, order_id)
struct Delivered {
  std::string order_id;
};
CATGA_EVENT(Delivered, order_id)
CATGA_ORDERING_KEY(Delivered, order_id)
}  // namespace mt

namespace {

// The value of one series line (`name{labels} value`) of a /metrics text.
std::optional<double> sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 && line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return std::nullopt;
}

double value(const catga::Metrics& m, const std::string& series) { return sample(m.render_prometheus(), series).value_or(-1); }

struct Node {
  Node(const catga::test::NatsServer& server, std::string name, std::shared_ptr<catga::Metrics> metrics) {
    auto js = nt::js_options();
    js.metrics = std::move(metrics);
    transport = nt::make_transport(server, std::move(js), std::move(name));
    mediator.attach(*transport);
  }
  std::unique_ptr<catga::nats::JetStreamTransport> transport;
  catga::Mediator mediator;
};

}  // namespace

TEST_CASE("a group's retries, redeliveries, dead letters, acks, lag and publish latency are counted per type and group") {
  catga::test::NatsServer server;
  auto metrics = std::make_shared<catga::Metrics>();
  Node svc(server, "svc", metrics);
  std::atomic<int> fine{0};
  auto opts = nt::group("shipping");
  opts.retry.max_deliver = 3;
  opts.retry.backoff = {20ms};
  auto sub = svc.mediator.subscribe<nt::OrderPlaced>(opts, [&](const nt::OrderPlaced& e) -> catga::Status {
    if (e.order_id == "poison") return catga::make_error("carrier_down", "503", true);  // 3 deliveries, then DLQ
    if (e.order_id == "rejected") return catga::make_error("invalid_address", "no such street", false);
    fine++;
    return {};
  });
  REQUIRE(sub);
  REQUIRE(svc.mediator.publish(nt::OrderPlaced{"poison", 1}));
  REQUIRE(svc.mediator.publish(nt::OrderPlaced{"rejected", 2}));
  for (int i = 0; i < 5; ++i) REQUIRE(svc.mediator.publish(nt::OrderPlaced{"ok-" + std::to_string(i), i}));

  const std::string labels = R"({type="OrderPlaced",group="shipping"})";
  REQUIRE(wait_for([&] { return value(*metrics, "catga_messages_dead_lettered_total" + labels) == 2; }));
  REQUIRE(wait_for([&] { return value(*metrics, "catga_messages_consumed_total" + labels) == 5; }));
  CHECK(fine.load() == 5);
  CHECK(value(*metrics, "catga_messages_retried_total" + labels) == 2);      // poison, deliveries 1 and 2
  CHECK(value(*metrics, "catga_messages_redelivered_total" + labels) == 2);  // poison, deliveries 2 and 3
  // Every delivery after the last first delivery saw nothing left behind it.
  CHECK(value(*metrics, "catga_consumer_lag_messages" + labels) == 0);
  CHECK(value(*metrics, "catga_ack_latency_seconds_count" + labels) == 5);
  CHECK(value(*metrics, "catga_ack_latency_seconds_bucket" +
                            std::string(R"({type="OrderPlaced",group="shipping",le="+Inf"})")) == 5);
  CHECK(value(*metrics, R"(catga_messages_published_total{type="OrderPlaced"})") == 7);
  CHECK(value(*metrics, R"(catga_publish_duration_seconds_count{type="OrderPlaced"})") == 7);
  CHECK(value(*metrics, R"(catga_publish_duration_seconds_sum{type="OrderPlaced"})") > 0);
  const auto text = metrics->render_prometheus();
  CHECK(text.find("# TYPE catga_ack_latency_seconds histogram") != std::string::npos);
  CHECK(text.find("# TYPE catga_messages_dead_lettered_total counter") != std::string::npos);
  // Ids never become labels: a series per type and group only.
  CHECK(text.find("poison") == std::string::npos);
}

TEST_CASE("publish_async outcomes are counted as published when the stream stored them") {
  catga::test::NatsServer server;
  auto metrics = std::make_shared<catga::Metrics>();
  Node svc(server, "svc", metrics);
  std::atomic<int> stored{0};
  for (int i = 0; i < 10; ++i) {
    REQUIRE(svc.transport->publish_async(nt::PaymentTaken{"p-" + std::to_string(i)},
                                         [&](const catga::nats::PublishOutcome& o) {
                                           if (o.status) stored++;
                                         }));
  }
  REQUIRE(svc.transport->flush(30s));
  CHECK(stored.load() == 10);
  CHECK(value(*metrics, R"(catga_messages_published_total{type="PaymentTaken"})") == 10);
  CHECK(value(*metrics, R"(catga_publish_duration_seconds_count{type="PaymentTaken"})") == 10);
}

TEST_CASE("request outcomes are counted by type on the caller (ok, error code, timeout, no_handler) and the server") {
  catga::test::NatsServer server;
  auto client_metrics = std::make_shared<catga::Metrics>();
  auto server_metrics = std::make_shared<catga::Metrics>();
  Node client(server, "client", client_metrics);
  client.mediator.route_remote<nt::Add>();
  client.mediator.route_remote<nt::Fail>();
  client.mediator.route_remote<nt::Slow>();
  Node svc(server, "svc", server_metrics);
  svc.mediator.handle<nt::Add>([](const nt::Add& a) { return a.a + a.b; });
  svc.mediator.handle<nt::Fail>([](const nt::Fail& f) -> catga::Status {
    return catga::make_error("out_of_stock", "sku " + f.why, true);
  });
  svc.mediator.handle<nt::Slow>([](const nt::Slow& q) {
    std::this_thread::sleep_for(std::chrono::milliseconds(q.ms));
    return q.ms;
  });
  auto add = svc.mediator.serve<nt::Add>("calc");
  auto fail = svc.mediator.serve<nt::Fail>("stock");
  REQUIRE(add);
  REQUIRE(fail);

  for (int i = 0; i < 3; ++i) REQUIRE(client.mediator.send(nt::Add{i, 1}));
  REQUIRE_FALSE(client.mediator.send(nt::Fail{"A-1"}));
  auto nobody = client.mediator.query(nt::Slow{1});  // not served yet
  REQUIRE_FALSE(nobody);
  CHECK(nobody.error().code == "no_handler");
  auto slow = svc.mediator.serve<nt::Slow>("slow");
  REQUIRE(slow);
  auto ctx = catga::Context::root();
  ctx.deadline = Clock::now() + 200ms;
  auto late = client.mediator.query(nt::Slow{1500}, ctx);
  REQUIRE_FALSE(late);
  CHECK(late.error().code == "timeout");

  const catga::Metrics& c = *client_metrics;
  CHECK(value(c, R"(catga_requests_total{type="Add",outcome="ok"})") == 3);
  CHECK(value(c, R"(catga_requests_total{type="Fail",outcome="out_of_stock"})") == 1);
  CHECK(value(c, R"(catga_requests_total{type="Slow",outcome="no_handler"})") == 1);
  CHECK(value(c, R"(catga_requests_total{type="Slow",outcome="timeout"})") == 1);
  CHECK(value(c, R"(catga_request_duration_seconds_count{type="Add"})") == 3);
  CHECK(value(c, R"(catga_request_duration_seconds_count{type="Slow"})") == 2);

  const catga::Metrics& s = *server_metrics;
  CHECK(value(s, R"(catga_requests_served_total{type="Add",service="calc",outcome="ok"})") == 3);
  CHECK(value(s, R"(catga_requests_served_total{type="Fail",service="stock",outcome="out_of_stock"})") == 1);
  CHECK(value(s, R"(catga_requests_served_total{type="Add",service="calc",outcome="overloaded"})") == 0);
  REQUIRE(wait_for([&] { return value(s, R"(catga_requests_served_total{type="Slow",service="slow",outcome="ok"})") == 1; }));
}

TEST_CASE("without a registry nothing is recorded and everything still flows") {
  catga::test::NatsServer server;
  Node svc(server, "svc", nullptr);
  std::atomic<int> seen{0};
  auto sub = svc.mediator.subscribe<nt::OrderPlaced>(nt::group("billing"), [&](const nt::OrderPlaced&) { seen++; });
  REQUIRE(sub);
  REQUIRE(svc.mediator.publish(nt::OrderPlaced{"a", 1}));
  REQUIRE(wait_for([&] { return seen.load() == 1; }));
  CHECK(svc.transport->options().metrics == nullptr);
}

TEST_CASE("an ordered group counts each of its types under its own type label, without a per-partition lag") {
  catga::test::NatsServer server;
  auto metrics = std::make_shared<catga::Metrics>();
  Node svc(server, "svc", metrics);
  std::atomic<int> seen{0};
  auto sub = svc.mediator.subscribe_ordered<mt::Shipped, mt::Delivered>(
      nt::group("tracking"), [&](const mt::Shipped&) { seen++; }, [&](const mt::Delivered&) { seen++; });
  REQUIRE(sub);
  for (int i = 0; i < 3; ++i) REQUIRE(svc.mediator.publish(mt::Shipped{"o-" + std::to_string(i)}));
  for (int i = 0; i < 2; ++i) REQUIRE(svc.mediator.publish(mt::Delivered{"o-" + std::to_string(i)}));
  REQUIRE(wait_for([&] {
    return value(*metrics, R"(catga_messages_consumed_total{type="Shipped",group="tracking"})") == 3 &&
           value(*metrics, R"(catga_messages_consumed_total{type="Delivered",group="tracking"})") == 2;
  }));
  CHECK(seen.load() == 5);
  CHECK(value(*metrics, R"(catga_ack_latency_seconds_count{type="Delivered",group="tracking"})") == 2);
  // A partition's pending count is not the group's: no lag series.
  CHECK(metrics->render_prometheus().find("catga_consumer_lag_messages{type=\"Shipped\"") == std::string::npos);
}
