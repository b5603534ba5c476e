// issue 24: a real Prometheus server (Debian's `prometheus`) scrapes the
// running sample's /metrics; its HTTP API must then hold the expected series
// with plausible values. Proves the text format is one Prometheus accepts,
// not only one our tests parse.
#include <doctest/doctest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "deployment.hpp"

using namespace oft;
using nlohmann::json;

namespace {

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// The value of the first sample of an instant query, or nullopt.
std::optional<double> query(httplib::Client& c, const std::string& promql, json* raw = nullptr) {
  auto r = c.Get("/api/v1/query", httplib::Params{{"query", promql}}, httplib::Headers{});
  if (!r || r->status != 200) return std::nullopt;
  auto j = json::parse(r->body, nullptr, false);
  if (raw != nullptr) *raw = j;
  if (j.is_discarded() || j.value("status", "") != "success") return std::nullopt;
  const auto& result = j["data"]["result"];
  if (!result.is_array() || result.empty()) return std::nullopt;
  return std::stod(result[0]["value"][1].get<std::string>());
}

}  // namespace

TEST_CASE("a real Prometheus scrapes every service of the sample and finds the catga series") {
  Deployment d;
  d.add("order", "order-1");
  d.add("inventory", "inventory-1");
  d.add("payment", "payment-1");
  d.add("notification", "notification-1");
  d.start_all();
  auto c = d.client(d.get("order-1"));
  const std::string id = place(c, order_body("c1", {{{"sku", "A-1"}, {"qty", 1}}}, 20.0), "prom-1");
  REQUIRE(!id.empty());
  CHECK(wait_final(d, d.get("order-1"), id).value("status", "") == "confirmed");
  // A declined payment: its saga compensates (issue 24's saga metrics).
  const std::string declined = place(c, order_body("declined", {{{"sku", "A-2"}, {"qty", 1}}}, 12.5), "prom-2");
  REQUIRE(!declined.empty());
  CHECK(wait_final(d, d.get("order-1"), declined).value("status", "") == "cancelled");

  const auto dir = d.directory() / "prometheus";
  std::filesystem::create_directories(dir / "data");
  std::string targets;
  for (const auto& s : d.services()) {
    if (!targets.empty()) targets += ", ";
    targets += "'127.0.0.1:" + std::to_string(s->port) + "'";
  }
  std::ofstream(dir / "prometheus.yml") << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                                        << "scrape_configs:\n  - job_name: order-flow\n"
                                        << "    static_configs:\n      - targets: [" << targets << "]\n";
  const int port = free_port();
  ServiceProcess prometheus("prometheus",
                            {"--config.file=" + (dir / "prometheus.yml").string(),
                             "--storage.tsdb.path=" + (dir / "data").string(),
                             "--web.listen-address=127.0.0.1:" + std::to_string(port)},
                            {}, dir / "prometheus.log", PROMETHEUS_BINARY);
  prometheus.start();
  httplib::Client api("127.0.0.1", port);
  api.set_read_timeout(std::chrono::seconds(10));

  // Every target up, then the series of one scrape after the order.
  json raw;
  const bool up = eventually(
      [&] {
        auto n = query(api, "count(up{job=\"order-flow\"} == 1)", &raw);
        return n && *n == static_cast<double>(d.services().size());
      },
      std::chrono::seconds(60));
  REQUIRE_MESSAGE(up, "targets not all up: " << raw.dump() << "\n" << prometheus.log());

  auto handled = [&](const std::string& type) {
    return query(api, "sum(catga_messages_handled_total{type=\"" + type + "\"})");
  };
  CHECK(eventually([&] { return handled("PlaceOrder").value_or(0) >= 1; }, std::chrono::seconds(30)));
  CHECK(handled("PlaceOrder").value_or(0) < 100);  // one order placed: a small count, not garbage
  CHECK(handled("ReserveInventory").value_or(0) >= 1);
  CHECK(handled("ChargePayment").value_or(0) >= 1);
  CHECK(handled("OrderConfirmed").value_or(0) >= 1);
  // Histograms arrive whole: buckets, sum and count of the same calls.
  const auto count = query(api, "sum(catga_handler_duration_seconds_count{type=\"PlaceOrder\"})");
  const auto inf = query(api, "sum(catga_handler_duration_seconds_bucket{type=\"PlaceOrder\",le=\"+Inf\"})");
  REQUIRE(count);
  REQUIRE(inf);
  CHECK(*count == *inf);
  const auto seconds = query(api, "sum(catga_handler_duration_seconds_sum{type=\"PlaceOrder\"})");
  REQUIRE(seconds);
  CHECK(*seconds > 0);
  CHECK(*seconds < 60);
  // Consumer lag per group, a gauge refreshed at scrape time.
  CHECK(query(api, "count(catga_consumer_pending)").value_or(0) >= 1);

  // The transport's own series (JetStreamOptions::metrics).
  auto sum = [&](const std::string& series) { return query(api, "sum(" + series + ")"); };
  CHECK(sum("catga_messages_published_total{type=\"OrderPlaced\"}").value_or(0) >= 2);
  CHECK(sum("catga_messages_published_total{type=\"OrderPlaced\"}").value_or(0) < 100);
  CHECK(eventually([&] { return sum("catga_messages_consumed_total{group=\"notification\"}").value_or(0) >= 2; },
                   std::chrono::seconds(30)));
  CHECK(sum("catga_messages_dead_lettered_total").value_or(-1) == 0);  // the series exist, nothing dead-lettered
  CHECK(query(api, "count(catga_consumer_lag_messages)").value_or(0) >= 1);
  const auto published = sum("catga_publish_duration_seconds_count{type=\"OrderPlaced\"}");
  const auto published_inf = sum("catga_publish_duration_seconds_bucket{type=\"OrderPlaced\",le=\"+Inf\"}");
  REQUIRE(published);
  CHECK(published == published_inf);
  CHECK(sum("catga_ack_latency_seconds_count{group=\"notification\"}").value_or(0) >= 2);
  // Remote requests of the sagas, on both sides.
  CHECK(sum("catga_requests_total{type=\"ChargePayment\",outcome=\"ok\"}").value_or(0) >= 1);
  CHECK(sum("catga_requests_served_total{type=\"ReserveInventory\",service=\"inventory\",outcome=\"ok\"}")
            .value_or(0) >= 2);
  // Sagas: both orders finished, one completed, one compensated.
  const bool sagas_done = eventually(
      [&] {
        const auto started = sum("catga_sagas_started_total");
        const auto completed = sum("catga_sagas_completed_total");
        const auto compensated = sum("catga_sagas_compensated_total");
        const auto failed = sum("catga_sagas_failed_total");
        return started && completed && compensated && failed && *started == 2 &&
               *started == *completed + *compensated + *failed;
      },
      std::chrono::seconds(30));
  CHECK(sagas_done);
  CHECK(sum("catga_sagas_completed_total").value_or(0) == 1);
  CHECK(sum("catga_sagas_compensated_total").value_or(0) == 1);
  prometheus.terminate();
}
