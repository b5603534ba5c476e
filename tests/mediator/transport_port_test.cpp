// The mediator's side of the Transport port, exercised with a synchronous
// loopback transport: publish hands events over, subscribe decodes them,
// route_remote/serve carry commands and queries.

#include <doctest/doctest.h>

#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_messages.hpp"

using namespace catga_test;

namespace loopback {

struct LocalEvent {};
CATGA_MESSAGE(LocalEvent, catga::EventTag, "LocalEvent")

}  // namespace loopback

// Three versions of one event and of one command (same wire names): version
// 2 renamed "qty" to "quantity", version 3 added "warehouse".
namespace ver1 {
struct Reserved {
  std::string sku;
  int qty = 0;
};
CATGA_EVENT(Reserved, sku, qty)
struct Reserve {
  std::string sku;
  int qty = 0;
};
CATGA_COMMAND(Reserve, int, sku, qty)
}  // namespace ver1
namespace ver2 {
struct Reserved {
  std::string sku;
  int quantity = 0;
};
CATGA_EVENT(Reserved, sku, quantity)
CATGA_VERSION(Reserved, 2)
struct Reserve {
  std::string sku;
  int quantity = 0;
};
CATGA_COMMAND(Reserve, int, sku, quantity)
CATGA_VERSION(Reserve, 2)
}  // namespace ver2
namespace ver3 {
struct Reserved {
  std::string sku;
  int quantity = 0;
  std::string warehouse = "main";
};
CATGA_EVENT(Reserved, sku, quantity, warehouse)
CATGA_VERSION(Reserved, 3)
}  // namespace ver3

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
    catga::wire::write_headers(
        m.context, m.info.name, [&](std::string_view k, std::string_view v) { w.headers.emplace_back(k, v); },
        catga::wire::deadline_travels(m.info.kind), m.info.version);
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

  // Hands a hand-made request to the server of `type`; the reply body.
  std::string request_raw(const std::string& type, const Wire& w) {
    LoopDelivery d(w);
    return servers_.at(type)(d);
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

namespace {

// The upcaster of version 1 to 2: "qty" → "quantity" (a body without "qty" throws).
nlohmann::json rename_qty(nlohmann::json body) {
  body["quantity"] = body.at("qty");
  body.erase("qty");
  return body;
}

}  // namespace

TEST_CASE("a versioned message carries Catga-Message-Version; version 1 carries none") {
  LoopbackTransport t;
  catga::Mediator m;
  m.attach(t);
  CHECK(catga::message_version<ver1::Reserved>() == 1);
  CHECK(catga::message_version<ver3::Reserved>() == 3);
  CHECK(catga::message_info<ver3::Reserved>().version == 3);
  REQUIRE(m.publish(ver1::Reserved{"A", 1}));
  REQUIRE(m.publish(ver2::Reserved{"A", 1}));
  REQUIRE(m.publish(ver3::Reserved{"A", 1, "north"}));
  REQUIRE(t.published.size() == 3);
  CHECK_FALSE(header(t.published[0], "Catga-Message-Version"));
  CHECK(header(t.published[1], "Catga-Message-Version") == std::optional<std::string_view>("2"));
  CHECK(header(t.published[2], "Catga-Message-Version") == std::optional<std::string_view>("3"));
}

TEST_CASE("upcasters bring older bodies to the consumer's version, in a chain; newer bodies are decoded as they are") {
  LoopbackTransport t;
  catga::Mediator producer;
  producer.attach(t);
  catga::Mediator consumer;
  consumer.attach(t);
  int step2 = 0;
  consumer.upcast<ver3::Reserved>(1, rename_qty);
  consumer.upcast<ver3::Reserved>(2, [&](nlohmann::json body) {
    ++step2;
    return body;  // version 3 only added a field with a default
  });
  std::vector<ver3::Reserved> got;
  REQUIRE(consumer.subscribe<ver3::Reserved>(group("stock"), [&](const ver3::Reserved& e) { got.push_back(e); }));

  REQUIRE(producer.publish(ver1::Reserved{"A", 3}));            // 1 → 2 → 3
  REQUIRE(producer.publish(ver2::Reserved{"B", 4}));            // 2 → 3
  REQUIRE(producer.publish(ver3::Reserved{"C", 5, "north"}));  // as it is
  REQUIRE(t.delivery_results.size() == 3);
  for (const auto& r : t.delivery_results) CHECK(r.ok());
  REQUIRE(got.size() == 3);
  CHECK(got[0].quantity == 3);
  CHECK(got[0].warehouse == "main");
  CHECK(got[1].quantity == 4);
  CHECK(got[2].quantity == 5);
  CHECK(got[2].warehouse == "north");
  CHECK(step2 == 2);

  SUBCASE("a version newer than the consumer's is decoded as it is, without upcasting") {
    catga::Mediator old_consumer;
    old_consumer.attach(t);
    int upcasts = 0;
    old_consumer.upcast<ver2::Reserved>(1, [&](nlohmann::json body) {
      ++upcasts;
      return rename_qty(std::move(body));
    });
    std::vector<ver2::Reserved> old_got;
    REQUIRE(old_consumer.subscribe<ver2::Reserved>(group("old"),
                                                   [&](const ver2::Reserved& e) { old_got.push_back(e); }));
    t.delivery_results.clear();
    REQUIRE(producer.publish(ver3::Reserved{"D", 6, "north"}));
    REQUIRE(old_got.size() == 1);
    CHECK(old_got[0].quantity == 6);
    CHECK(upcasts == 0);
  }
}

TEST_CASE("without upcasters a body of any version is decoded as it is") {
  LoopbackTransport t;
  catga::Mediator producer;
  producer.attach(t);
  catga::Mediator consumer;
  consumer.attach(t);
  std::vector<ver2::Reserved> got;
  REQUIRE(consumer.subscribe<ver2::Reserved>(group("stock"), [&](const ver2::Reserved& e) { got.push_back(e); }));
  REQUIRE(producer.publish(ver1::Reserved{"A", 3}));
  REQUIRE(got.size() == 1);
  CHECK(got[0].sku == "A");
  CHECK(got[0].quantity == 0);  // "qty" is unknown to version 2: its default
}

TEST_CASE("an upcaster that fails makes the message malformed: not retried, never a crash") {
  LoopbackTransport t;
  catga::Mediator producer;
  producer.attach(t);
  catga::Mediator consumer;
  consumer.attach(t);
  consumer.upcast<ver3::Reserved>(1, [](nlohmann::json body) -> nlohmann::json {
    if (body.value("qty", 0) < 0) throw std::invalid_argument("negative qty");
    return rename_qty(std::move(body));
  });
  consumer.upcast<ver3::Reserved>(2, [](nlohmann::json body) -> nlohmann::json {
    if (body.value("sku", "") == "int") throw 42;  // not even a std::exception
    if (body.value("sku", "") == "array") return nlohmann::json::array();
    return body;
  });
  int calls = 0;
  REQUIRE(consumer.subscribe<ver3::Reserved>(group("stock"), [&](const ver3::Reserved&) { ++calls; }));
  REQUIRE(producer.publish(ver1::Reserved{"A", -1}));
  REQUIRE(producer.publish(ver2::Reserved{"int", 1}));
  REQUIRE(producer.publish(ver2::Reserved{"array", 1}));
  REQUIRE(t.delivery_results.size() == 3);
  const char* expected[] = {"from version 1 failed: negative qty", "from version 2 failed: unknown exception",
                            "from version 2 failed: the upcaster did not return a JSON object"};
  for (std::size_t i = 0; i < 3; ++i) {
    CAPTURE(i);
    REQUIRE_FALSE(t.delivery_results[i]);
    CHECK(t.delivery_results[i].error().code == catga::errc::malformed);
    CHECK_FALSE(t.delivery_results[i].error().retryable);
    CHECK(t.delivery_results[i].error().message.find(expected[i]) != std::string::npos);
    CHECK(t.delivery_results[i].error().message.find("'Reserved'") != std::string::npos);
  }
  CHECK(calls == 0);

  SUBCASE("an invalid Catga-Message-Version is malformed too") {
    Wire w = t.published[1];
    for (auto& [k, v] : w.headers) {
      if (k == "Catga-Message-Version") v = "two";
    }
    t.delivery_results.clear();
    t.deliver(w);
    REQUIRE(t.delivery_results.size() == 1);
    REQUIRE_FALSE(t.delivery_results[0]);
    CHECK(t.delivery_results[0].error().code == catga::errc::malformed);
    CHECK(t.delivery_results[0].error().message.find("Catga-Message-Version") != std::string::npos);
  }
}

TEST_CASE("served requests are upcast too; a failing upcaster is the caller's malformed error") {
  LoopbackTransport t;
  catga::Mediator server;
  server.attach(t);
  server.upcast<ver2::Reserve>(1, rename_qty);
  server.handle<ver2::Reserve>([](const ver2::Reserve& r) -> catga::Result<int> {
    if (r.quantity < 0) return catga::make_error("unreachable", "the upcaster refuses this", false);
    return r.quantity * 10;
  });
  REQUIRE(server.serve<ver2::Reserve>("stock"));
  catga::Mediator old_client;
  old_client.attach(t);
  old_client.route_remote<ver1::Reserve>();
  catga::Mediator new_client;
  new_client.attach(t);
  new_client.route_remote<ver2::Reserve>();

  auto old_reply = old_client.send(ver1::Reserve{"A", 3});
  REQUIRE_MESSAGE(old_reply, (old_reply ? "" : old_reply.error().message));
  CHECK(*old_reply == 30);
  auto new_reply = new_client.send(ver2::Reserve{"A", 4});  // carries version 2: not upcast
  REQUIRE_MESSAGE(new_reply, (new_reply ? "" : new_reply.error().message));
  CHECK(*new_reply == 40);

  // A version-1 body without "qty" (another client's): rename_qty throws.
  Wire w;
  w.subject = "catga.cmd.Reserve";
  catga::wire::write_headers(catga::Context::root(), "Reserve",
                             [&](std::string_view k, std::string_view v) { w.headers.emplace_back(k, v); });
  w.body = R"({"sku":"A"})";
  auto reply = t.request_raw("Reserve", w);
  auto decoded = catga::wire::decode_reply(reply);
  REQUIRE_FALSE(decoded);
  CHECK(decoded.error().code == catga::errc::malformed);
  CHECK(decoded.error().message.find("upcasting 'Reserve' from version 1 failed") != std::string::npos);
}

TEST_CASE("Mediator::upcast refuses steps that never run and a second step for one version") {
  catga::Mediator m;
  auto code_of = [&](int from) -> std::string {
    try {
      m.upcast<ver3::Reserved>(from, [](nlohmann::json b) { return b; });
    } catch (const catga::Exception& e) {
      return e.error().code;
    }
    return "ok";
  };
  CHECK(code_of(0) == catga::errc::validation);
  CHECK(code_of(3) == catga::errc::validation);  // version 3 is current
  CHECK(code_of(2) == "ok");
  CHECK(code_of(2) == catga::errc::duplicate_handler);
  CHECK_THROWS_AS(m.upcast<ver1::Reserved>(1, rename_qty), catga::Exception);  // version 1 has nothing older
}
