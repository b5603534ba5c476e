// The mediator's side of the Transport port, exercised with a synchronous
// loopback transport: publish hands events over, subscribe decodes them,
// route_remote/serve carry commands and queries.

#include <doctest/doctest.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "test_messages.hpp"

using namespace catga_test;

namespace loopback {

struct LocalEvent {};
CATGA_MESSAGE(LocalEvent, catga::EventTag, "LocalEvent")

}  // namespace loopback

namespace {

struct Wire {
  std::string subject;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int attempt = 1;
};

class LoopDelivery final : public catga::Delivery {
 public:
  explicit LoopDelivery(const Wire& w) : w_(w) {}
  std::string_view subject() const noexcept override { return w_.subject; }
  std::string_view body() const noexcept override { return w_.body; }
  std::optional<std::string_view> header(std::string_view name) const noexcept override {
    for (const auto& [k, v] : w_.headers) {
      if (k == name) return std::string_view(v);
    }
    return std::nullopt;
  }
  void for_each_header(catga::FunctionRef<void(std::string_view, std::string_view)> visit) const override {
    for (const auto& [k, v] : w_.headers) visit(k, v);
  }
  int attempt() const noexcept override { return w_.attempt; }
  std::uint64_t sequence() const noexcept override { return 0; }

 private:
  const Wire& w_;
};

// Delivers synchronously on the caller's thread; records what it carried.
class LoopbackTransport final : public catga::Transport {
 public:
  std::vector<Wire> published;
  std::vector<catga::Status> delivery_results;
  std::optional<catga::Error> fail_publish;

  static Wire to_wire(const catga::OutboundMessage& m, std::string_view kind) {
    Wire w;
    w.subject = "catga." + std::string(kind) + "." + std::string(m.info.name);
    catga::wire::write_headers(m.context, m.info.name,
                               [&](std::string_view k, std::string_view v) { w.headers.emplace_back(k, v); });
    w.body = std::string(m.body);
    return w;
  }

  catga::Status publish(const catga::OutboundMessage& m) override {
    if (fail_publish) return *fail_publish;
    published.push_back(to_wire(m, "evt"));
    deliver(published.back());
    return {};
  }

  void deliver(const Wire& w) {
    for (auto& [type, handler] : subscribers_) {
      if ("catga.evt." + type == w.subject) {
        LoopDelivery d(w);
        delivery_results.push_back(handler(d));
      }
    }
  }

  catga::Result<catga::Subscription> subscribe(std::string_view type, const catga::SubscribeOptions&,
                                               catga::DeliveryHandler handler) override {
    subscribers_.emplace_back(std::string(type), std::move(handler));
    return catga::Subscription{};
  }

  catga::Result<std::string> request(const catga::OutboundMessage& m) override {
    auto it = servers_.find(std::string(m.info.name));
    if (it == servers_.end()) return catga::make_error(catga::errc::no_handler, "nobody serves it");
    Wire w = to_wire(m, "cmd");
    LoopDelivery d(w);
    return it->second(d);
  }

  catga::Result<catga::Subscription> serve(std::string_view type, std::string_view,
                                           catga::RequestHandler handler) override {
    servers_[std::string(type)] = std::move(handler);
    return catga::Subscription{};
  }

 private:
  std::vector<std::pair<std::string, catga::DeliveryHandler>> subscribers_;
  std::map<std::string, catga::RequestHandler> servers_;
};

// Designated initializers of SubscribeOptions trip -Wmissing-field-initializers on GCC 12.
catga::SubscribeOptions group(std::string name) {
  catga::SubscribeOptions o;
  o.group = std::move(name);
  return o;
}

std::optional<std::string_view> header(const Wire& w, std::string_view name) {
  for (const auto& [k, v] : w.headers) {
    if (k == name) return std::string_view(v);
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("publish runs local handlers, then hands the event to the transport") {
  LoopbackTransport t;
  catga::Mediator m;
  m.attach(t);
  CHECK(m.transport() == &t);
  std::size_t published_when_local_ran = 99;
  m.on<OrderPlaced>([&](const OrderPlaced&) { published_when_local_ran = t.published.size(); });

  auto ctx = catga::Context::root();
  const auto id = ctx.message_id;
  REQUIRE(m.publish(OrderPlaced{"o-1", 12.5}, ctx).ok());
  CHECK(published_when_local_ran == 0);
  REQUIRE(t.published.size() == 1);
  const Wire& w = t.published[0];
  CHECK(w.subject == "catga.evt.OrderPlaced");
  CHECK(nlohmann::json::parse(w.body) == nlohmann::json{{"order_id", "o-1"}, {"amount", 12.5}});
  CHECK(header(w, "Nats-Msg-Id") == std::optional<std::string_view>(id.text().view()));
  CHECK(header(w, "Catga-Type") == std::optional<std::string_view>("OrderPlaced"));

  m.detach();
  CHECK(m.transport() == nullptr);
  REQUIRE(m.publish(OrderPlaced{"o-2", 1}).ok());
  CHECK(t.published.size() == 1);
}

TEST_CASE("a transport failure is the result of publish") {
  LoopbackTransport t;
  t.fail_publish = catga::make_error(catga::errc::unavailable, "stream down", true);
  catga::Mediator m;
  m.attach(t);
  int local = 0;
  m.on<OrderPlaced>([&](const OrderPlaced&) { ++local; });
  auto s = m.publish(OrderPlaced{});
  REQUIRE_FALSE(s);
  CHECK(s.error() == catga::Error{"unavailable", "stream down", true});
  CHECK(local == 1);

  SUBCASE("with a local failure too, both are reported") {
    m.on<OrderPlaced>([](const OrderPlaced&) -> catga::Status { return catga::make_error("x", "local", false); },
                      "bad");
    auto both = m.publish(OrderPlaced{});
    REQUIRE_FALSE(both);
    CHECK(both.error().code == catga::errc::handler_failed);
    CHECK(both.error().message.find("[bad] x: local") != std::string::npos);
    CHECK(both.error().message.find("[transport] unavailable: stream down") != std::string::npos);
  }
}

TEST_CASE("an event without a JSON codec cannot leave the process") {
  LoopbackTransport t;
  catga::Mediator m;
  int local = 0;
  m.on<loopback::LocalEvent>([&](const loopback::LocalEvent&) { ++local; });
  CHECK(m.publish(loopback::LocalEvent{}).ok());  // no transport: fine
  m.attach(t);
  auto s = m.publish(loopback::LocalEvent{});
  REQUIRE_FALSE(s);
  CHECK(s.error().message.find("no JSON codec") != std::string::npos);
  CHECK(local == 2);
  CHECK(t.published.empty());
}

TEST_CASE("subscribe decodes deliveries and runs the pipeline around the handler") {
  LoopbackTransport t;
  catga::Mediator publisher;
  publisher.attach(t);
  catga::Mediator consumer;
  consumer.attach(t);
  std::vector<std::string> keys;
  consumer.use(catga::make_behavior([&](catga::Invocation& inv, catga::Next next) {
    keys.emplace_back(inv.handler_key);
    return next();
  }));
  std::optional<OrderPlaced> got;
  std::optional<catga::Context> got_ctx;
  auto sub = consumer.subscribe<OrderPlaced>(group("billing"), [&](const OrderPlaced& e, catga::Context& ctx) {
    got = e;
    got_ctx = ctx;
  });
  REQUIRE(sub);

  auto ctx = catga::Context::root();
  ctx.headers.set("Tenant", "acme");
  REQUIRE(publisher.publish(OrderPlaced{"o-9", 3}, ctx).ok());
  REQUIRE(got);
  CHECK(*got == OrderPlaced{"o-9", 3});
  REQUIRE(got_ctx);
  CHECK(got_ctx->message_id == ctx.message_id);
  CHECK(got_ctx->correlation_id == ctx.correlation_id);
  CHECK(got_ctx->trace.trace_lo == ctx.trace.trace_lo);
  CHECK(got_ctx->trace.parent_span_id == ctx.trace.span_id);
  CHECK(got_ctx->headers.get("Tenant") == std::optional<std::string_view>("acme"));
  CHECK(got_ctx->message_type == "OrderPlaced");
  CHECK(keys == std::vector<std::string>{"billing"});
  REQUIRE(t.delivery_results.size() == 1);
  CHECK(t.delivery_results[0].ok());
}

TEST_CASE("subscribe passes the delivery attempt and handler failures back to the transport") {
  LoopbackTransport t;
  catga::Mediator m;
  m.attach(t);
  int attempt_seen = 0;
  auto sub = m.subscribe<OrderPlaced>(group("g"), [&](const OrderPlaced&, catga::Context& ctx) -> catga::Status {
    attempt_seen = ctx.attempt;
    return catga::make_error("busy", "later", true);
  });
  REQUIRE(sub);
  Wire w;
  w.subject = "catga.evt.OrderPlaced";
  catga::wire::write_headers(catga::Context::root(), "OrderPlaced",
                             [&](std::string_view k, std::string_view v) { w.headers.emplace_back(k, v); });
  w.body = R"({"order_id":"o","amount":1})";
  w.attempt = 3;
  t.deliver(w);
  CHECK(attempt_seen == 3);
  REQUIRE(t.delivery_results.size() == 1);
  REQUIRE_FALSE(t.delivery_results[0]);
  CHECK(t.delivery_results[0].error().code == "busy");
  CHECK(t.delivery_results[0].error().retryable);
}

TEST_CASE("subscribe refuses malformed deliveries with non-retryable errors") {
  LoopbackTransport t;
  catga::Mediator m;
  m.attach(t);
  int calls = 0;
  auto sub = m.subscribe<OrderPlaced>(group("g"), [&](const OrderPlaced&) { ++calls; });
  REQUIRE(sub);

  Wire good;
  good.subject = "catga.evt.OrderPlaced";
  catga::wire::write_headers(catga::Context::root(), "OrderPlaced",
                             [&](std::string_view k, std::string_view v) { good.headers.emplace_back(k, v); });
  good.body = R"({"order_id":"o","amount":1})";

  struct Case {
    const char* what;
    std::function<void(Wire&)> spoil;
    std::string_view code;
  };
  const std::vector<Case> cases = {
      {"wrong type header", [](Wire& w) { w.headers[1].second = "OrderShipped"; }, catga::errc::unknown_type},
      {"body not JSON", [](Wire& w) { w.body = "{oops"; }, catga::errc::malformed},
      {"a field of the wrong type", [](Wire& w) { w.body = R"({"order_id":1})"; }, catga::errc::malformed},
      {"body not an object", [](Wire& w) { w.body = R"([{"order_id":"o"}])"; }, catga::errc::malformed},
      {"no message id", [](Wire& w) { w.headers.erase(w.headers.begin()); }, catga::errc::malformed},
  };
  REQUIRE(good.headers[0].first == "Nats-Msg-Id");
  REQUIRE(good.headers[1].first == "Catga-Type");
  for (const auto& c : cases) {
    CAPTURE(c.what);
    Wire w = good;
    c.spoil(w);
    t.delivery_results.clear();
    t.deliver(w);
    REQUIRE(t.delivery_results.size() == 1);
    REQUIRE_FALSE(t.delivery_results[0]);
    CHECK(t.delivery_results[0].error().code == c.code);
    CHECK_FALSE(t.delivery_results[0].error().retryable);
  }
  CHECK(calls == 0);
  t.delivery_results.clear();
  t.deliver(good);
  CHECK(calls == 1);
}

TEST_CASE("subscribe and serve need a transport") {
  catga::Mediator m;
  auto sub = m.subscribe<OrderPlaced>(group("g"), [](const OrderPlaced&) {});
  REQUIRE_FALSE(sub);
  CHECK(sub.error().code == catga::errc::no_handler);
  CHECK(sub.error().message.find("OrderPlaced") != std::string::npos);
  auto srv = m.serve<GetPrice>("pricing");
  REQUIRE_FALSE(srv);
  CHECK(srv.error().code == catga::errc::no_handler);
}

TEST_CASE("route_remote sends commands and queries to the serving mediator") {
  LoopbackTransport t;
  catga::Mediator server;
  server.attach(t);
  std::optional<catga::Context> server_ctx;
  server.handle<GetPrice>([&](const GetPrice& q, catga::Context& ctx) -> catga::Result<Price> {
    server_ctx = ctx;
    if (q.sku == "none") return catga::make_error("unknown_sku", "no sku 'none'", false);
    return Price{"EUR", 250};
  });
  server.handle<ShipOrder>([](const ShipOrder&) {});
  REQUIRE(server.serve<GetPrice>("pricing"));
  REQUIRE(server.serve<ShipOrder>("shipping"));

  catga::Mediator client;
  client.attach(t);
  client.route_remote<GetPrice>();
  client.route_remote<ShipOrder>();
  client.route_remote<PlaceOrder>();  // nobody serves it
  int client_behavior_calls = 0;
  client.use(catga::make_behavior([&](catga::Invocation&, catga::Next next) {
    ++client_behavior_calls;
    return next();
  }));

  auto ctx = catga::Context::root();
  auto price = client.query(GetPrice{"A-1"}, ctx);
  REQUIRE(price);
  CHECK(*price == Price{"EUR", 250});
  REQUIRE(server_ctx);
  CHECK(server_ctx->message_id == ctx.message_id);
  CHECK(server_ctx->correlation_id == ctx.correlation_id);

  auto missing = client.query(GetPrice{"none"});
  REQUIRE_FALSE(missing);
  CHECK(missing.error() == catga::Error{"unknown_sku", "no sku 'none'", false});

  CHECK(client.send(ShipOrder{"o-1", 1}).ok());

  auto nobody = client.send(PlaceOrder{});
  REQUIRE_FALSE(nobody);
  CHECK(nobody.error().code == catga::errc::no_handler);
  CHECK(client_behavior_calls == 4);  // the local pipeline wraps remote calls too
}

TEST_CASE("a served type without a local handler answers no_handler") {
  LoopbackTransport t;
  catga::Mediator server;
  server.attach(t);
  REQUIRE(server.serve<GetPrice>("pricing"));
  catga::Mediator client;
  client.attach(t);
  client.route_remote<GetPrice>();
  auto r = client.query(GetPrice{"A-1"});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == catga::errc::no_handler);
  CHECK(r.error().message.find("GetPrice") != std::string::npos);
}

TEST_CASE("route_remote without a transport fails cleanly") {
  catga::Mediator client;
  client.route_remote<GetPrice>();
  auto r = client.query(GetPrice{"A-1"});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == catga::errc::no_handler);
}
