// End to end: the order-flow services as separate processes of the
// `order-flow` binary around a real nats-server with JetStream (two
// replicas of inventory and payment), driven over HTTP like a client would.
#include <doctest/doctest.h>
#include <httplib.h>

#include <atomic>
#include <cstdlib>
#include <initializer_list>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include <catga/nats/jetstream_transport.hpp>

#include "deployment.hpp"
#include "messages.hpp"

using namespace oft;
using nlohmann::json;

TEST_CASE("across processes over NATS: confirmed, declined, out of stock; one order per key on any replica") {
  Deployment d;
  d.add_standard(2);
  d.start_all();
  Service& order1 = d.get("order-1");
  Service& order2 = d.get("order-2");
  auto c1 = d.client(order1);

  const std::string trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto placed = c1.Post("/orders", {{"Idempotency-Key", "e2e-ok"}, {"traceparent", trace}},
                        order_body("c1", {{{"sku", "A-1"}, {"qty", 2}}}, 40.0).dump(), "application/json");
  REQUIRE(placed);
  REQUIRE(placed->status == 202);
  const std::string ok_id = json::parse(placed->body).at("order_id");
  const std::string correlation = placed->get_header_value("X-Correlation-Id");
  CHECK(placed->get_header_value("traceparent").substr(0, 36) == trace.substr(0, 36));  // same trace id
  const std::string declined_id =
      place(c1, order_body("declined", {{{"sku", "A-2"}, {"qty", 1}}}, 12.5), "e2e-declined");
  const std::string over_id = place(c1, order_body("c2", {{{"sku", "A-2"}, {"qty", 1}}}, 750.0), "e2e-over");
  const std::string soldout_id = place(
      c1, order_body("c3", {{{"sku", "A-3"}, {"qty", 1}}, {{"sku", "SOLDOUT-1"}, {"qty", 1}}}, 15.0), "e2e-soldout");
  REQUIRE(!declined_id.empty());
  REQUIRE(!over_id.empty());
  REQUIRE(!soldout_id.empty());

  // The same key sent to both order replicas at once: one order.
  std::vector<std::string> dup(6);
  std::vector<std::thread> clients;
  for (std::size_t i = 0; i < dup.size(); ++i) {
    clients.emplace_back([&, i] {
      auto c = d.client(i % 2 == 0 ? order1 : order2);
      dup[i] = place(c, order_body("c4", {{{"sku", "A-4"}, {"qty", 1}}}, 20.0), "e2e-dup");
    });
  }
  for (auto& t : clients) t.join();
  CHECK(std::set<std::string>(dup.begin(), dup.end()).size() == 1);
  REQUIRE(!dup[0].empty());

  // PlaceOrder is also a remote command: any catga client on the bus may
  // send it (here, this test process over its own connection).
  std::string remote_id;
  {
    catga::nats::NatsOptions o;
    o.servers = {d.nats().url()};
    o.name = "e2e-client";
    auto transport = catga::nats::JetStreamTransport::create(o).value();
    catga::Mediator client;
    client.attach(*transport);
    client.route_remote<order_flow::PlaceOrder>();
    const order_flow::PlaceOrder command{"c5", {{"A-5", 1}}, 25.0, "e2e-remote"};
    auto first = client.send(command);
    REQUIRE_MESSAGE(first, first.error().code << ": " << first.error().message);
    CHECK(first->created);
    CHECK(first->status == "pending");
    auto again = client.send(command);
    REQUIRE(again);
    CHECK(again->order_id == first->order_id);
    CHECK_FALSE(again->created);
    auto invalid = client.send(order_flow::PlaceOrder{"", {}, -1.0, ""});
    REQUIRE_FALSE(invalid);
    CHECK(invalid.error().code == catga::errc::validation);
    remote_id = first->order_id;
    (void)transport->stop(std::chrono::seconds(5));
  }

  auto ok = wait_final(d, order1, ok_id);
  CHECK(ok.at("status") == "confirmed");
  auto declined = wait_final(d, order1, declined_id);
  CHECK(declined.at("status") == "cancelled");
  CHECK(declined.at("reason").get<std::string>().find("payment_declined") != std::string::npos);
  CHECK(declined.at("cancelled_by") == "saga:order-1");
  CHECK(declined.at("cancelled_from") == "processing");
  auto over = wait_final(d, order1, over_id);
  CHECK(over.at("status") == "cancelled");
  CHECK(over.at("reason").get<std::string>().find("exceeds the limit") != std::string::npos);
  auto soldout = wait_final(d, order2, soldout_id);  // any replica answers for any order
  CHECK(soldout.at("status") == "cancelled");
  CHECK(soldout.at("reason").get<std::string>().find("out_of_stock") != std::string::npos);
  CHECK(wait_final(d, order2, dup[0]).at("status") == "confirmed");
  CHECK(wait_final(d, order1, remote_id).at("status") == "confirmed");

  // The history names the replicas that did the work.
  CHECK(eventually([&] {
    auto v = d.get_json(order1, "/orders/" + ok_id);
    std::set<std::string> actors;
    for (const auto& h : v.value("history", json::array())) actors.insert(h.value("actor", ""));
    return (actors.count("inventory:inventory-1") + actors.count("inventory:inventory-2")) == 1 &&
           (actors.count("payment:payment-1") + actors.count("payment:payment-2")) == 1;
  }));

  CHECK(orders_of(d, order1).size() == 6);
  // Listing by status.
  const auto cancelled = d.get_json(order2, "/orders?status=cancelled");
  CHECK(cancelled.value("count", 0) == 3);
  for (const auto& o : cancelled.at("orders")) CHECK(o.at("status") == "cancelled");
  CHECK(d.get_json(order1, "/orders?status=confirmed").value("count", 0) == 3);
  check_everything(d, order1);

  // One correlation id, and the caller's trace id, follow the order through
  // every service's log.
  const std::string ids = "correlation=" + correlation + " trace=4bf92f3577b34da6a3ce929d0e0e4736";
  CHECK(d.get("order-1").process->log().find(ids) != std::string::npos);
  CHECK(d.get("notification-1").process->log().find(ids) != std::string::npos);
  const std::string inventory_logs = d.get("inventory-1").process->log() + d.get("inventory-2").process->log();
  const std::string payment_logs = d.get("payment-1").process->log() + d.get("payment-2").process->log();
  CHECK(inventory_logs.find(ids) != std::string::npos);
  CHECK(payment_logs.find(ids) != std::string::npos);

  // Every service reports metrics; the order service counts its sagas.
  auto metrics = d.client(order1).Get("/metrics");
  REQUIRE(metrics);
  CHECK(metrics->body.find("order_flow_sagas{status=\"completed\"} 3") != std::string::npos);
  CHECK(metrics->body.find("order_flow_sagas{status=\"compensated\"} 3") != std::string::npos);
  CHECK(metrics->body.find("catga_consumer_pending{type=\"InventoryReserved,InventoryReleased,PaymentCharged,PaymentFailed\","
                           "group=\"order-history\"}") !=
        std::string::npos);
  // Per service, summed over its replicas: calls handled and failed per
  // type (with the error code), handler duration histograms, consumer lag.
  auto scrape = [&](std::initializer_list<const char*> instances) {
    std::string text;
    for (const char* i : instances) {
      auto r = d.client(d.get(i)).Get("/metrics");
      REQUIRE_MESSAGE(r, "no /metrics from " << i);
      CHECK(r->status == 200);
      text += r->body;
    }
    return text;
  };
  const std::string inventory = scrape({"inventory-1", "inventory-2"});
  const std::string payment = scrape({"payment-1", "payment-2"});
  const std::string notification = scrape({"notification-1"});
  for (const auto& [text, series] : std::vector<std::pair<const std::string*, std::string>>{
           {&inventory, "order_flow_handled_total{service=\"inventory\",instance=\"inventory-1\""},
           {&inventory, "catga_messages_handled_total{type=\"ReserveInventory\"}"},
           {&inventory, "catga_messages_failed_total{type=\"ReserveInventory\",code=\"out_of_stock\"}"},
           {&inventory, "catga_handler_duration_seconds_bucket{type=\"ReserveInventory\",le=\"+Inf\"}"},
           {&inventory, "catga_consumer_pending{type=\"OrderConfirmed\",group=\"inventory\"}"},
           {&payment, "catga_messages_failed_total{type=\"ChargePayment\",code=\"payment_declined\"}"},
           {&payment, "catga_handler_duration_seconds_sum{type=\"ChargePayment\"}"},
           {&notification, "catga_messages_handled_total{type=\"OrderConfirmed\"}"},
           {&notification, "catga_consumer_pending{type=\"OrderConfirmed,OrderCancelled\",group=\"notification\"}"}}) {
    CHECK_MESSAGE(text->find(series) != std::string::npos, series);
  }

  // Readiness follows NATS: not ready while the server is down, ready
  // again once it is back (same port and store).
  d.nats().stop();
  CHECK(eventually(
      [&] {
        auto r = d.client(d.get("payment-2")).Get("/readyz");
        return r && r->status == 503 && r->body.find("NATS connection is") != std::string::npos;
      },
      std::chrono::seconds(30)));
  auto health = d.client(d.get("payment-2")).Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);  // alive all the same
  d.nats().start();
  for (const char* i : {"order-1", "inventory-1", "payment-2", "notification-1"}) d.wait_ready(d.get(i));
}

TEST_CASE(
    "the order service is killed (SIGKILL) in the middle of sagas and restarted: every saga ends, books balance") {
  Deployment d;
  // A slow card provider keeps many sagas in flight when the crash comes.
  d.add_standard(1, {{"PAYMENT_LATENCY_MS", "150"}});
  d.start_all();
  Service& order = d.get("order-1");

  constexpr int kOrders = 40;
  std::vector<std::string> ids(kOrders);
  std::vector<json> bodies;
  for (int i = 0; i < kOrders; ++i) {
    json items = json::array({{{"sku", "A-" + std::to_string(1 + i % 5)}, {"qty", 1 + i % 3}}});
    std::string customer = "c" + std::to_string(i % 6);
    double amount = 12.0 * (1 + i % 4);
    if (i % 10 == 3) customer = "declined";
    if (i % 10 == 8) items.push_back({{"sku", "SOLDOUT-1"}, {"qty", 1}});
    bodies.push_back(order_body(customer, items, amount));
  }
  std::atomic<int> next{0};
  std::atomic<int> accepted{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&] {
      auto http = d.client(order);
      for (int i = next++; i < kOrders; i = next++) {
        ids[static_cast<std::size_t>(i)] =
            place(http, bodies[static_cast<std::size_t>(i)], "crash-" + std::to_string(i));
        if (!ids[static_cast<std::size_t>(i)].empty()) ++accepted;
      }
    });
  }
  // Crash half way through the batch: some orders are accepted with their
  // sagas running, some requests die with the process.
  REQUIRE(eventually([&] { return accepted.load() >= kOrders / 2; }, std::chrono::seconds(60)));
  order.process->kill();
  for (auto& t : clients) t.join();

  d.start(order);  // same INSTANCE_ID: it resumes the sagas it owned
  d.wait_ready(order);
  // Clients retry what got no answer, with the same keys: no order twice.
  auto http = d.client(order);
  for (int i = 0; i < kOrders; ++i) {
    const auto idx = static_cast<std::size_t>(i);
    const std::string id = place(http, bodies[idx], "crash-" + std::to_string(i));
    REQUIRE_MESSAGE(!id.empty(), "order " << i << " was not accepted after the restart\n" << d.tails());
    if (!ids[idx].empty()) CHECK(ids[idx] == id);
    ids[idx] = id;
  }
  for (const auto& id : ids) wait_final(d, order, id);

  const std::string log = order.process->log();
  CHECK_MESSAGE(log.find("resumed sagas=") != std::string::npos, "no saga was in flight at the crash\n" << log);
  CHECK(orders_of(d, order).size() == static_cast<std::size_t>(kOrders));
  auto metrics = d.client(order).Get("/metrics");
  REQUIRE(metrics);
  CHECK(metrics->body.find("order_flow_sagas{status=\"running\"} 0") != std::string::npos);
  CHECK(metrics->body.find("order_flow_sagas{status=\"compensating\"} 0") != std::string::npos);
  CHECK(metrics->body.find("order_flow_sagas{status=\"compensation_failed\"} 0") != std::string::npos);
  check_everything(d, order);
}
