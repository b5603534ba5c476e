// catga::otel (issue 24): the OTEL_* variables, the sampler, the bounded
// queue and its drop counter, failed requests, and what reaches a collector
// (an httplib server here). The bodies it receives are written to
// OTLP_BODY_DIR, where otel_proto_conformance checks them against the
// official .proto files (validate_otlp.py).
#include <doctest/doctest.h>
#include <httplib.h>

#include <atomic>
#include <catga/mediator.hpp>
#include <catga/otel/exporter.hpp>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

namespace {

struct Ship {
  std::string order_id;
};
CATGA_COMMAND(Ship, void, order_id)
struct Shipped {
  std::string order_id;
};
CATGA_EVENT(Shipped, order_id)

// A collector: answers `status` to POST /v1/traces and keeps the bodies.
class Collector {
 public:
  explicit Collector(int status = 200) : status_(status) {
    server_.Post("/v1/traces", [this](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard lock(mu_);
        bodies_.push_back(req.body);
        content_types_.push_back(req.get_header_value("Content-Type"));
      }
      cv_.notify_all();
      res.status = status_;
      res.set_content("{}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~Collector() {
    server_.stop();
    thread_.join();
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1/traces"; }
  std::vector<std::string> bodies() {
    std::lock_guard lock(mu_);
    return bodies_;
  }
  std::vector<std::string> content_types() {
    std::lock_guard lock(mu_);
    return content_types_;
  }

 private:
  int status_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> bodies_;
  std::vector<std::string> content_types_;
};

using Env = std::map<std::string, std::string>;
catga::Result<std::optional<catga::otel::ExporterOptions>> from(const Env& env) {
  return catga::otel::ExporterOptions::from_env([&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

catga::otel::ExporterOptions quick(const std::string& endpoint) {
  catga::otel::ExporterOptions o;
  o.endpoint = endpoint;
  o.service_name = "exporter-test";
  o.schedule_delay = std::chrono::hours(1);  // only full batches and flush() send
  o.timeout = std::chrono::seconds(30);
  return o;
}

catga::Span span_of(std::uint64_t trace_lo) {
  catga::Span s;
  s.operation = "send";
  s.message_type = "Ship";
  s.destination = "Ship";
  s.trace.trace_hi = 1;
  s.trace.trace_lo = trace_lo;
  s.trace.span_id = trace_lo;
  s.start_unix_ns = 1;
  s.end_unix_ns = 2;
  return s;
}

void write_body(const std::string& name, const std::string& body) {
  std::filesystem::create_directories(OTLP_BODY_DIR);
  std::ofstream(std::filesystem::path(OTLP_BODY_DIR) / name) << body;
}

}  // namespace

TEST_CASE("OTEL_* variables: endpoint, service, resource, sampler, batch settings") {
  CHECK(from({})->has_value() == false);  // no endpoint: tracing off
  CHECK(from({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"}, {"OTEL_SDK_DISABLED", "true"}})->has_value() == false);

  auto o = from({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"},
                 {"OTEL_SERVICE_NAME", "payment"},
                 {"OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=payment-1,deployment.environment=test"},
                 {"OTEL_TRACES_SAMPLER", "parentbased_traceidratio"},
                 {"OTEL_TRACES_SAMPLER_ARG", "0.25"},
                 {"OTEL_BSP_MAX_QUEUE_SIZE", "100"},
                 {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "10"},
                 {"OTEL_BSP_SCHEDULE_DELAY", "200"}});
  REQUIRE(o);
  REQUIRE(o->has_value());
  const auto& opt = **o;
  CHECK(opt.endpoint == "http://collector:4318/v1/traces");
  CHECK(opt.service_name == "payment");
  CHECK(opt.resource_attributes.size() == 2);
  CHECK(opt.sampler == catga::otel::Sampler::trace_id_ratio);
  CHECK(opt.ratio == doctest::Approx(0.25));
  CHECK(opt.max_queue == 100);
  CHECK(opt.max_batch == 10);
  CHECK(opt.schedule_delay == std::chrono::milliseconds(200));

  auto traces = from({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1"},
                      {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:2/custom"},
                      {"OTEL_TRACES_SAMPLER", "always_off"}});
  REQUIRE(traces);
  CHECK((*traces)->endpoint == "http://b:2/custom");
  CHECK((*traces)->sampler == catga::otel::Sampler::always_off);

  CHECK_FALSE(from({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"}, {"OTEL_TRACES_SAMPLER", "sometimes"}}));
  CHECK_FALSE(from({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"},
                    {"OTEL_TRACES_SAMPLER", "traceidratio"},
                    {"OTEL_TRACES_SAMPLER_ARG", "1.5"}}));
  CHECK_FALSE(from({{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4318"}}));
  CHECK_FALSE(from({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"}, {"OTEL_RESOURCE_ATTRIBUTES", "novalue"}}));
}

TEST_CASE("the ratio sampler keeps its ratio of random trace ids, the same way in every process") {
  int kept = 0;
  for (int i = 0; i < 4000; ++i) {
    if (catga::otel::ratio_sampled(catga::Context::root().trace, 0.25)) ++kept;
  }
  CHECK(kept > 800);  // Binomial(4000, 0.25): sd 27
  CHECK(kept < 1200);
  catga::TraceContext t;
  t.trace_lo = 0x00ffffffffffffffULL;
  CHECK_FALSE(catga::otel::ratio_sampled(t, 0.5));
  t.trace_lo = 0xff00000000000001ULL;  // only the low 56 bits count
  CHECK(catga::otel::ratio_sampled(t, 0.5));
}

TEST_CASE("spans of a mediator reach the collector as OTLP/JSON with ids, parents and messaging attributes") {
  Collector collector;
  auto exporter = catga::otel::Exporter::start(quick(collector.endpoint()));
  catga::Mediator m;
  m.trace_to(exporter);
  m.on<Shipped>([](const Shipped&) {});
  m.handle<Ship>([&](const Ship& s) { return m.publish(Shipped{s.order_id}); });
  catga::Context root = catga::Context::root();
  root.headers.set("tracestate", "vendor=7");
  REQUIRE(m.send(Ship{"o-1"}, root));
  REQUIRE(exporter->flush(std::chrono::seconds(30)));

  const auto bodies = collector.bodies();
  REQUIRE(bodies.size() == 1);
  CHECK(collector.content_types().front() == "application/json");
  write_body("mediator.json", bodies.front());
  const auto j = nlohmann::json::parse(bodies.front());
  const auto& rs = j.at("resourceSpans").at(0);
  CHECK(rs.at("resource").at("attributes").at(0).at("value").at("stringValue") == "exporter-test");
  const auto& spans = rs.at("scopeSpans").at(0).at("spans");
  REQUIRE(spans.size() == 2);
  // The publish ends first (it runs inside the send).
  const auto& publish = spans.at(0);
  const auto& send = spans.at(1);
  CHECK(send.at("name") == "send Ship");
  CHECK(publish.at("name") == "publish Shipped");
  CHECK(send.at("traceId") == std::string(root.trace.traceparent().view().substr(3, 32)));
  CHECK(send.at("spanId") == std::string(root.trace.traceparent().view().substr(36, 16)));
  CHECK(send.contains("parentSpanId") == false);
  CHECK(publish.at("parentSpanId") == send.at("spanId"));
  CHECK(publish.at("traceState") == "vendor=7");
  CHECK(exporter->stats().exported == 2);
  CHECK(exporter->stats().dropped == 0);
}

TEST_CASE("a full queue drops new spans and counts them; flush sends what was kept") {
  Collector collector;
  auto o = quick(collector.endpoint());
  o.max_queue = 4;
  o.max_batch = 100;  // never full: nothing leaves before flush()
  auto exporter = catga::otel::Exporter::start(o);
  for (std::uint64_t i = 1; i <= 10; ++i) exporter->on_end(span_of(i));
  CHECK(exporter->stats().dropped == 6);
  REQUIRE(exporter->flush(std::chrono::seconds(30)));
  CHECK(exporter->stats().exported == 4);
  CHECK(exporter->stats().dropped == 6);
  REQUIRE(collector.bodies().size() == 1);
}

TEST_CASE("full batches go at once, in batches of max_batch") {
  Collector collector;
  auto o = quick(collector.endpoint());
  o.max_batch = 3;
  auto exporter = catga::otel::Exporter::start(o);
  for (std::uint64_t i = 1; i <= 7; ++i) exporter->on_end(span_of(i));
  REQUIRE(exporter->flush(std::chrono::seconds(30)));
  std::size_t total = 0;
  for (const auto& b : collector.bodies()) {
    const auto n = nlohmann::json::parse(b)["resourceSpans"][0]["scopeSpans"][0]["spans"].size();
    CHECK(n <= 3);
    total += n;
  }
  CHECK(total == 7);
  CHECK(collector.bodies().size() >= 3);
}

TEST_CASE("a collector that refuses: the batch is dropped and counted, the exporter goes on") {
  Collector collector(500);
  auto exporter = catga::otel::Exporter::start(quick(collector.endpoint()));
  exporter->on_end(span_of(1));
  exporter->on_end(span_of(2));
  REQUIRE(exporter->flush(std::chrono::seconds(30)));
  CHECK(exporter->stats().exported == 0);
  CHECK(exporter->stats().dropped == 2);
  CHECK(exporter->stats().failed_requests == 1);
}

TEST_CASE("every kind of span and attribute encodes (body kept for the .proto check)") {
  std::vector<catga::otel::SpanRecord> records;
  const catga::Error err = catga::make_error("no_stock", "none \"left\"\n");
  const char* operations[] = {"send", "query", "serve", "request", "publish", "process", "saga_step"};
  std::uint64_t n = 1;
  for (const char* op : operations) {
    for (auto kind : {catga::SpanKind::internal, catga::SpanKind::server, catga::SpanKind::client,
                      catga::SpanKind::producer, catga::SpanKind::consumer}) {
      catga::Span s = span_of(n++);
      s.operation = op;
      s.kind = kind;
      s.trace.parent_span_id = n % 2 == 0 ? 0 : 77;
      s.tracestate = n % 3 == 0 ? "a=1,b=2" : "";
      s.error = n % 2 == 0 ? &err : nullptr;
      s.message_id = catga::MessageId::generate();
      s.correlation_id = catga::MessageId::generate();
      s.consumer_group = "billing";
      s.attempt = 2;
      s.sequence = 42;
      s.saga_type = std::string_view(op) == "saga_step" ? "order" : "";
      s.saga_id = "o-1";
      s.saga_step = "reserve";
      records.push_back(catga::otel::to_record(s));
    }
  }
  catga::otel::ExporterOptions o;
  o.service_name = "svc \"quoted\"";
  o.resource_attributes = {{"service.instance.id", "i-1"}};
  const std::string body = catga::otel::encode_otlp_json(records, o);
  write_body("all_kinds.json", body);
  const auto j = nlohmann::json::parse(body);
  CHECK(j["resourceSpans"][0]["scopeSpans"][0]["spans"].size() == records.size());
}
