// Spans (catga/tracing.hpp, issue 24): one per send, query, publish,
// consumed delivery attempt, remote request and serve, with the parents of
// the OpenTelemetry messaging conventions, over the in-memory transport.

#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <optional>

#include "catga/tracing.hpp"
#include "test_support.hpp"

using catga::Context;
using catga::InMemoryTransport;
using catga::Mediator;
using catga::SpanKind;
using catga::Subscription;
using namespace tt;

namespace {

struct Shipped {
  std::string order_id;
};
CATGA_COMMAND(Shipped, void, order_id)

// What a test needs of a finished span (Span's views die with on_end).
struct Recorded {
  std::string operation;
  SpanKind kind = SpanKind::internal;
  std::string type;
  std::string destination;
  catga::TraceContext trace;
  std::string tracestate;
  std::string group;
  int attempt = 0;
  std::optional<std::string> error_code;
  std::string message_id;
  bool ordered = false;  // end >= start
};

class CollectingSink final : public catga::SpanSink {
 public:
  explicit CollectingSink(bool sample = true) : sample_(sample) {}
  bool sample_root(const catga::TraceContext&) noexcept override { return sample_; }
  void on_end(const catga::Span& s) noexcept override {
    Recorded r;
    r.operation = std::string(s.operation);
    r.kind = s.kind;
    r.type = std::string(s.message_type);
    r.destination = std::string(s.destination);
    r.trace = s.trace;
    r.tracestate = std::string(s.tracestate);
    r.group = std::string(s.consumer_group);
    r.attempt = s.attempt;
    if (s.error != nullptr) r.error_code = s.error->code;
    r.message_id = s.message_id.text().str();
    r.ordered = s.start_unix_ns > 0 && s.end_unix_ns >= s.start_unix_ns;
    spans.add(std::move(r));
  }
  Recorder<Recorded> spans;

 private:
  bool sample_;
};

const Recorded* find(const std::vector<Recorded>& spans, std::string_view operation, std::string_view type,
                     int attempt = 0) {
  for (const auto& s : spans) {
    if (s.operation == operation && s.type == type && (attempt == 0 || s.attempt == attempt)) return &s;
  }
  return nullptr;
}

bool same_trace(const Recorded& a, const Recorded& b) {
  return a.trace.trace_hi == b.trace.trace_hi && a.trace.trace_lo == b.trace.trace_lo;
}

}  // namespace

TEST_CASE("no sink: nothing is recorded and dispatch works as before") {
  Mediator m;
  int handled = 0;
  m.handle<Shipped>([&](const Shipped&) { ++handled; });
  CHECK(m.span_sink() == nullptr);
  REQUIRE(m.send(Shipped{"o-1"}));
  CHECK(handled == 1);
}

TEST_CASE("send, query and publish inside a handler are child spans of the handler's span") {
  Mediator m;
  auto sink = std::make_shared<CollectingSink>();
  m.trace_to(sink);
  m.handle<GetPrice>([](const GetPrice&) { return 2.5; });
  m.on<OrderShipped>([](const OrderShipped&) {});
  m.handle<Shipped>([&](const Shipped& c) -> catga::Status {
    if (!m.query(GetPrice{"sku"})) return catga::make_error("x", "query failed");
    return m.publish(OrderShipped{c.order_id});
  });
  Context root = Context::root();
  root.headers.set("tracestate", "vendor=1");
  REQUIRE(m.send(Shipped{"o-1"}, root));

  const auto spans = sink->spans.items();
  REQUIRE(spans.size() == 3);
  const auto* send = find(spans, "send", "Shipped");
  const auto* query = find(spans, "query", "GetPrice");
  const auto* publish = find(spans, "publish", "OrderShipped");
  REQUIRE(send);
  REQUIRE(query);
  REQUIRE(publish);
  CHECK(send->trace.parent_span_id == 0);
  CHECK(send->trace.span_id == root.trace.span_id);
  CHECK(send->message_id == root.message_id.text().str());
  CHECK(send->kind == SpanKind::internal);
  CHECK(query->trace.parent_span_id == send->trace.span_id);
  CHECK(publish->trace.parent_span_id == send->trace.span_id);
  CHECK(publish->kind == SpanKind::internal);  // no transport: nothing leaves the process
  for (const auto* s : {send, query, publish}) {
    CHECK(same_trace(*s, *send));
    CHECK(s->tracestate == "vendor=1");
    CHECK(s->ordered);
    CHECK_FALSE(s->error_code);
  }
}

TEST_CASE("a failed send's span carries the error code") {
  Mediator m;
  auto sink = std::make_shared<CollectingSink>();
  m.trace_to(sink);
  m.handle<Shipped>([](const Shipped&) -> catga::Status { return catga::make_error("no_stock", "none left"); });
  CHECK_FALSE(m.send(Shipped{"o-1"}));
  const auto spans = sink->spans.items();
  REQUIRE(spans.size() == 1);
  CHECK(spans[0].error_code == std::optional<std::string>("no_stock"));
}

TEST_CASE("publish is a producer span; each consumed attempt is a consumer span, child of it, with group and attempt") {
  InMemoryTransport transport;
  Mediator m;
  m.attach(transport);
  auto sink = std::make_shared<CollectingSink>();
  m.trace_to(sink);
  std::atomic<int> calls{0};
  catga::SubscribeOptions options;
  options.group = "billing";
  options.retry.backoff = {std::chrono::milliseconds(1)};
  auto sub = m.subscribe<OrderPlaced>(options, [&](const OrderPlaced&) -> catga::Status {
    if (calls.fetch_add(1) == 0) return catga::make_error("busy", "later", true);
    return {};
  });
  REQUIRE(sub);
  REQUIRE(m.publish(OrderPlaced{"o-1", 5}));
  REQUIRE(sink->spans.wait_size(3));
  REQUIRE(transport.wait_idle(kWait));

  const auto spans = sink->spans.items();
  const auto* publish = find(spans, "publish", "OrderPlaced");
  const auto* first = find(spans, "process", "OrderPlaced", 1);
  const auto* second = find(spans, "process", "OrderPlaced", 2);
  REQUIRE(publish);
  REQUIRE(first);
  REQUIRE(second);
  CHECK(publish->kind == SpanKind::producer);
  for (const auto* c : {first, second}) {
    CHECK(c->kind == SpanKind::consumer);
    CHECK(same_trace(*c, *publish));
    CHECK(c->trace.parent_span_id == publish->trace.span_id);
    CHECK(c->group == "billing");
    CHECK(c->destination == "catga.evt.OrderPlaced");
    CHECK(c->message_id == publish->message_id);
  }
  CHECK(first->trace.span_id != second->trace.span_id);
  CHECK(first->error_code == std::optional<std::string>("busy"));
  CHECK_FALSE(second->error_code);
}

TEST_CASE("a remote query: query span, client span, then the server's span in the serving mediator") {
  InMemoryTransport transport;
  Mediator server, client;
  server.attach(transport);
  client.attach(transport);
  auto server_sink = std::make_shared<CollectingSink>();
  auto client_sink = std::make_shared<CollectingSink>();
  server.trace_to(server_sink);
  client.trace_to(client_sink);
  server.handle<GetPrice>([](const GetPrice&) { return 4.25; });
  auto serving = server.serve<GetPrice>("pricing").value();
  client.route_remote<GetPrice>();

  Context root = Context::root();
  root.headers.set("tracestate", "vendor=2");
  REQUIRE(client.query(GetPrice{"A-1"}, root));
  REQUIRE(server_sink->spans.wait_size(1));

  const auto cs = client_sink->spans.items();
  const auto ss = server_sink->spans.items();
  const auto* query = find(cs, "query", "GetPrice");
  const auto* request = find(cs, "request", "GetPrice");
  const auto* serve = find(ss, "serve", "GetPrice");
  REQUIRE(query);
  REQUIRE(request);
  REQUIRE(serve);
  CHECK(request->kind == SpanKind::client);
  CHECK(serve->kind == SpanKind::server);
  CHECK(request->trace.parent_span_id == query->trace.span_id);
  CHECK(serve->trace.parent_span_id == request->trace.span_id);
  CHECK(same_trace(*serve, *query));
  CHECK(serve->tracestate == "vendor=2");
}

TEST_CASE("a trace the sink does not sample records nothing, here or in the consumer") {
  InMemoryTransport transport;
  Mediator m;
  m.attach(transport);
  auto sink = std::make_shared<CollectingSink>(false);
  m.trace_to(sink);
  Recorder<Context> seen;
  catga::SubscribeOptions options;
  options.group = "billing";
  auto sub = m.subscribe<OrderPlaced>(options, [&](const OrderPlaced&, Context& ctx) { seen.add(ctx); });
  REQUIRE(sub);
  REQUIRE(m.publish(OrderPlaced{"o-1", 5}));
  REQUIRE(seen.wait_size(1));
  REQUIRE(transport.wait_idle(kWait));
  CHECK(sink->spans.size() == 0);
  // The decision travels: the consumer saw the sampled flag off.
  CHECK((seen.items().front().trace.flags & 1) == 0);
}
