#include <doctest/doctest.h>

#include <algorithm>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include "catga/pipeline/metrics.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using pt::PlaceOrder;

namespace {

struct MetricsFixture {
  std::shared_ptr<catga::ManualClock> clock = std::make_shared<catga::ManualClock>();
  std::shared_ptr<catga::Metrics> metrics = std::make_shared<catga::Metrics>();
  catga::Mediator mediator;

  MetricsFixture() {
    mediator.use(std::make_shared<catga::MetricsBehavior>(metrics, clock));
    mediator.handle<PlaceOrder>([this](const PlaceOrder& c) -> catga::Result<std::string> {
      clock->advance(3ms);
      if (c.amount <= 0) return catga::make_error("validation", "amount: must be positive");
      if (c.customer == "slow") clock->advance(20s);
      return c.customer;
    });
  }
};

bool has_line(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    if (l == line) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("Metrics: counts handled and failed calls per type and error code") {
  MetricsFixture f;
  CHECK(f.mediator.send(PlaceOrder{"ann", 1}).ok());
  CHECK(f.mediator.send(PlaceOrder{"bob", 2}).ok());
  CHECK_FALSE(f.mediator.send(PlaceOrder{"cy", 0}).ok());
  CHECK(f.metrics->handled("PlaceOrder") == 3);
  CHECK(f.metrics->failed("PlaceOrder", "validation") == 1);
  CHECK(f.metrics->failed("PlaceOrder", "timeout") == 0);
  CHECK(f.metrics->handled("Ship") == 0);
}

TEST_CASE("Metrics: durations land in the right histogram bucket") {
  MetricsFixture f;
  CHECK(f.mediator.send(PlaceOrder{"ann", 1}).ok());   // 3 ms
  CHECK(f.mediator.send(PlaceOrder{"slow", 1}).ok());  // 20.003 s: overflow bucket
  // 3 ms is above 2.5 ms and at most 5 ms.
  CHECK(catga::Metrics::kBucketLabels[7] == "0.005");
  CHECK(f.metrics->bucket("PlaceOrder", 6) == 0);
  CHECK(f.metrics->bucket("PlaceOrder", 7) == 1);
  CHECK(f.metrics->bucket("PlaceOrder", catga::Metrics::kBucketNanos.size()) == 1);
}

TEST_CASE("Metrics: Prometheus text has the expected families and samples") {
  MetricsFixture f;
  int ships = 0;
  f.mediator.handle<pt::Ship>([&](const pt::Ship&) { ++ships; });
  CHECK(f.mediator.send(PlaceOrder{"ann", 1}).ok());
  CHECK(f.mediator.send(PlaceOrder{"bob", 1}).ok());
  CHECK_FALSE(f.mediator.send(PlaceOrder{"cy", 0}).ok());
  CHECK(f.mediator.send(pt::Ship{"o-1"}).ok());

  const std::string text = f.metrics->render_prometheus();
  CHECK(has_line(text, "# TYPE catga_messages_handled_total counter"));
  CHECK(has_line(text, "catga_messages_handled_total{type=\"PlaceOrder\"} 3"));
  CHECK(has_line(text, "catga_messages_handled_total{type=\"Ship\"} 1"));
  CHECK(has_line(text, "# TYPE catga_messages_failed_total counter"));
  CHECK(has_line(text, "catga_messages_failed_total{type=\"PlaceOrder\",code=\"validation\"} 1"));
  CHECK(has_line(text, "# TYPE catga_handler_duration_seconds histogram"));
  CHECK(has_line(text, "catga_handler_duration_seconds_bucket{type=\"PlaceOrder\",le=\"0.0025\"} 0"));
  CHECK(has_line(text, "catga_handler_duration_seconds_bucket{type=\"PlaceOrder\",le=\"0.005\"} 3"));
  CHECK(has_line(text, "catga_handler_duration_seconds_bucket{type=\"PlaceOrder\",le=\"10\"} 3"));
  CHECK(has_line(text, "catga_handler_duration_seconds_bucket{type=\"PlaceOrder\",le=\"+Inf\"} 3"));
  CHECK(has_line(text, "catga_handler_duration_seconds_sum{type=\"PlaceOrder\"} 0.009"));
  CHECK(has_line(text, "catga_handler_duration_seconds_count{type=\"PlaceOrder\"} 3"));
  CHECK(has_line(text, "catga_handler_duration_seconds_bucket{type=\"Ship\",le=\"0.00001\"} 1"));
  CHECK(has_line(text, "catga_handler_duration_seconds_sum{type=\"Ship\"} 0"));

  // Every line is a comment or `name{labels} value`; every sample's family
  // was announced by a TYPE line before it.
  const std::regex sample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*\})? (-?[0-9.e+-]+|\+Inf|-Inf|NaN)$)");
  const std::regex comment(R"(^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) .*$)");
  std::vector<std::string> typed;
  std::istringstream in(text);
  int samples = 0;
  for (std::string l; std::getline(in, l);) {
    std::smatch m;
    if (std::regex_match(l, m, comment)) {
      if (m[1] == "TYPE") typed.push_back(m[2]);
      continue;
    }
    REQUIRE_MESSAGE(std::regex_match(l, m, sample), l);
    ++samples;
    std::string name = m[1];
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (name.ends_with(suffix) && name.starts_with("catga_handler_duration_seconds")) {
        name.resize(name.size() - std::string_view(suffix).size());
      }
    }
    CHECK_MESSAGE(std::find(typed.begin(), typed.end(), name) != typed.end(), l);
  }
  CHECK(samples > 0);
  CHECK(text.back() == '\n');
}

TEST_CASE("Metrics: buckets are cumulative in the text") {
  MetricsFixture f;
  CHECK(f.mediator.send(PlaceOrder{"ann", 1}).ok());
  CHECK(f.mediator.send(PlaceOrder{"slow", 1}).ok());
  const std::string text = f.metrics->render_prometheus();
  CHECK(has_line(text, "catga_handler_duration_seconds_bucket{type=\"PlaceOrder\",le=\"0.005\"} 1"));
  CHECK(has_line(text, "catga_handler_duration_seconds_bucket{type=\"PlaceOrder\",le=\"10\"} 1"));
  CHECK(has_line(text, "catga_handler_duration_seconds_bucket{type=\"PlaceOrder\",le=\"+Inf\"} 2"));
  CHECK(has_line(text, "catga_handler_duration_seconds_count{type=\"PlaceOrder\"} 2"));
}

TEST_CASE("Metrics: custom counters, gauges and callback gauges render in the same output") {
  catga::Metrics metrics;
  auto& emails = metrics.counter("orders_emailed_total", "Confirmation e-mails sent");
  emails.inc();
  emails.inc(2);
  CHECK(&metrics.counter("orders_emailed_total", "ignored") == &emails);
  auto& billing = metrics.gauge("catga_sagas_running", "Sagas not yet finished", {{"saga", "checkout"}});
  billing.set(4);
  billing.add(-1.5);
  double pending = 17;
  metrics.gauge_callback("catga_consumer_pending", "Messages waiting", {{"group", "billing"}, {"type", "A\"b\\c"}},
                         [&] { return pending; });
  pending = 18;

  const std::string text = metrics.render_prometheus();
  CHECK(has_line(text, "# HELP orders_emailed_total Confirmation e-mails sent"));
  CHECK(has_line(text, "# TYPE orders_emailed_total counter"));
  CHECK(has_line(text, "orders_emailed_total 3"));
  CHECK(has_line(text, "# TYPE catga_sagas_running gauge"));
  CHECK(has_line(text, "catga_sagas_running{saga=\"checkout\"} 2.5"));
  CHECK(has_line(text, "# TYPE catga_consumer_pending gauge"));
  CHECK(has_line(text, R"(catga_consumer_pending{group="billing",type="A\"b\\c"} 18)"));
}

TEST_CASE("Metrics: misuse of custom metric names throws") {
  catga::Metrics metrics;
  (void)metrics.counter("jobs_total", "Jobs");
  CHECK_THROWS_AS((void)metrics.gauge("jobs_total", "Jobs"), catga::Exception);
  CHECK_THROWS_AS((void)metrics.counter("bad name", "x"), catga::Exception);
  CHECK_THROWS_AS((void)metrics.counter("ok_name", "x", {{"bad-label", "v"}}), catga::Exception);
  CHECK_THROWS_AS((void)metrics.counter("catga_messages_handled_total", "x"), catga::Exception);
}

TEST_CASE("Metrics: concurrent recording loses nothing") {
  catga::Metrics metrics;
  const catga::MessageInfo& info = catga::message_info<PlaceOrder>();
  const catga::Error err{"boom", "", true};
  constexpr int kThreads = 4;
  constexpr int kEach = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) metrics.record(info, 1ms, i % 5 == 0 ? &err : nullptr);
    });
  }
  for (auto& t : threads) t.join();
  CHECK(metrics.handled("PlaceOrder") == kThreads * kEach);
  CHECK(metrics.failed("PlaceOrder", "boom") == kThreads * kEach / 5);
  CHECK(metrics.bucket("PlaceOrder", 5) == kThreads * kEach);  // le 0.001
}

TEST_CASE("Metrics: custom histograms render cumulative buckets, _sum and _count, with and without labels") {
  catga::Metrics m;
  auto& lat = m.histogram("catga_publish_duration_seconds", "Publish until stored", {{"type", "X"}});
  lat.observe(20us);   // bucket le=0.00005
  lat.observe(20us);
  lat.observe(3ms);    // le=0.005
  lat.observe(30s);    // above every bound
  CHECK(&m.histogram("catga_publish_duration_seconds", "", {{"type", "X"}}) == &lat);
  CHECK(lat.count() == 4);
  m.histogram("plain_seconds", "No labels").observe(1ms);
  const auto text = m.render_prometheus();
  CHECK(text.find("# TYPE catga_publish_duration_seconds histogram\n") != std::string::npos);
  CHECK(text.find("catga_publish_duration_seconds_bucket{type=\"X\",le=\"0.00001\"} 0\n") != std::string::npos);
  CHECK(text.find("catga_publish_duration_seconds_bucket{type=\"X\",le=\"0.00005\"} 2\n") != std::string::npos);
  CHECK(text.find("catga_publish_duration_seconds_bucket{type=\"X\",le=\"0.005\"} 3\n") != std::string::npos);
  CHECK(text.find("catga_publish_duration_seconds_bucket{type=\"X\",le=\"10\"} 3\n") != std::string::npos);
  CHECK(text.find("catga_publish_duration_seconds_bucket{type=\"X\",le=\"+Inf\"} 4\n") != std::string::npos);
  CHECK(text.find("catga_publish_duration_seconds_sum{type=\"X\"} 30.00304\n") != std::string::npos);
  CHECK(text.find("catga_publish_duration_seconds_count{type=\"X\"} 4\n") != std::string::npos);
  CHECK(text.find("plain_seconds_bucket{le=\"0.001\"} 1\n") != std::string::npos);
  CHECK(text.find("plain_seconds_count 1\n") != std::string::npos);
  CHECK_THROWS_AS(m.counter("plain_seconds", "now a counter"), catga::Exception);
}
