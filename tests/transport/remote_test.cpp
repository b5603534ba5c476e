// Remote commands and queries (Mediator::route_remote / Mediator::serve)
// over InMemoryTransport's request/serve.

#include <doctest/doctest.h>

#include <stdexcept>
#include <thread>

#include "test_support.hpp"

using catga::Context;
using catga::InMemoryTransport;
using catga::Mediator;
using catga::Subscription;
using namespace tt;
using namespace std::chrono_literals;

TEST_CASE("a remote query returns the server's value; the server runs it on its own thread with the context") {
  InMemoryTransport transport;
  Mediator server, client;
  server.attach(transport);
  client.attach(transport);
  struct Seen {
    std::thread::id thread;
    Context ctx;
  };
  Recorder<Seen> seen;
  server.handle<GetPrice>([&](const GetPrice& q, Context& ctx) {
    seen.add({std::this_thread::get_id(), ctx});
    return q.sku == "A-1" ? 4.25 : 1.0;
  });
  auto serving = server.serve<GetPrice>("pricing").value();
  client.route_remote<GetPrice>();

  Context ctx = Context::root();
  ctx.headers.set("Tenant", "acme");
  auto r = client.query(GetPrice{"A-1"}, ctx);
  REQUIRE(r);
  CHECK(*r == 4.25);
  REQUIRE(seen.size() == 1);
  const auto s = seen.items().front();
  CHECK(s.thread != std::this_thread::get_id());
  CHECK(s.ctx.message_id == ctx.message_id);
  CHECK(s.ctx.correlation_id == ctx.correlation_id);
  CHECK(s.ctx.headers.get("Tenant") == std::optional<std::string_view>("acme"));
  CHECK(s.ctx.message_type == "GetPrice");

  auto stats = transport.group_stats("GetPrice", "pricing");
  REQUIRE(stats);
  CHECK(stats->service);
  CHECK(stats->members == 1);
  CHECK(stats->acked == 1);
}

TEST_CASE("a remote command without result round-trips") {
  InMemoryTransport transport;
  Mediator server, client;
  server.attach(transport);
  client.attach(transport);
  Recorder<Reserve> reserved;
  server.handle<Reserve>([&](const Reserve& c) { reserved.add(c); });
  auto serving = server.serve<Reserve>("inventory").value();
  client.route_remote<Reserve>();
  REQUIRE(client.send(Reserve{"A-1", 3}));
  REQUIRE(reserved.size() == 1);
  CHECK(reserved.items()[0].sku == "A-1");
  CHECK(reserved.items()[0].qty == 3);
}

TEST_CASE("an error reply carries the server's code, message and retryable flag") {
  InMemoryTransport transport;
  Mediator server, client;
  server.attach(transport);
  client.attach(transport);
  server.handle<GetPrice>([](const GetPrice& q) -> catga::Result<double> {
    if (q.sku == "busy") return catga::make_error("overloaded", "try again", true);
    return catga::make_error("out_of_stock", "sku " + q.sku + " has 0 left");
  });
  auto serving = server.serve<GetPrice>("pricing").value();
  client.route_remote<GetPrice>();

  auto r = client.query(GetPrice{"A-1"});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "out_of_stock");
  CHECK(r.error().message == "sku A-1 has 0 left");
  CHECK_FALSE(r.error().retryable);

  auto busy = client.query(GetPrice{"busy"});
  REQUIRE_FALSE(busy);
  CHECK(busy.error().code == "overloaded");
  CHECK(busy.error().retryable);
}

TEST_CASE("a request nobody serves fails at once with no_handler") {
  InMemoryTransport transport;
  Mediator server, client;
  server.attach(transport);
  client.attach(transport);
  client.route_remote<GetPrice>();

  auto r = client.query(GetPrice{"A-1"});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == catga::errc::no_handler);
  CHECK(r.error().message.find("GetPrice") != std::string::npos);

  server.handle<GetPrice>([](const GetPrice&) { return 1.0; });
  auto serving = server.serve<GetPrice>("pricing").value();
  REQUIRE(client.query(GetPrice{"A-1"}));
  serving.stop();
  auto after = client.query(GetPrice{"A-1"});
  REQUIRE_FALSE(after);
  CHECK(after.error().code == catga::errc::no_handler);
}

TEST_CASE("a slow server makes the request time out at the caller's deadline") {
  InMemoryTransport transport;
  Mediator server, client;
  server.attach(transport);
  client.attach(transport);
  Gate release;
  Recorder<bool> server_saw_deadline;
  server.handle<GetPrice>([&](const GetPrice& q, Context& ctx) {
    server_saw_deadline.add(ctx.has_deadline());
    if (q.sku == "slow") release.wait();
    return 2.5;
  });
  auto serving = server.serve<GetPrice>("pricing").value();
  client.route_remote<GetPrice>();

  Context ctx = Context::root();
  ctx.deadline = Context::Clock::now() + 50ms;
  auto r = client.query(GetPrice{"slow"}, ctx);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == catga::errc::timeout);
  CHECK(r.error().retryable);
  CHECK(Context::Clock::now() >= ctx.deadline);

  release.open();  // the late reply is dropped; the server is free again
  auto next = client.query(GetPrice{"fast"});
  REQUIRE(next);
  CHECK(*next == 2.5);
  CHECK(server_saw_deadline.items() == std::vector<bool>{true, false});

  Context expired = Context::root();
  expired.deadline = Context::Clock::now() - 1ms;
  auto late = client.query(GetPrice{"fast"}, expired);
  REQUIRE_FALSE(late);
  CHECK(late.error().code == catga::errc::timeout);
}

TEST_CASE("requests are spread over the members of a service") {
  InMemoryTransport transport;
  Mediator a, b, client;
  a.attach(transport);
  b.attach(transport);
  client.attach(transport);
  a.handle<GetPrice>([](const GetPrice&) { return 1.0; });
  b.handle<GetPrice>([](const GetPrice&) { return 2.0; });
  auto sa = a.serve<GetPrice>("pricing").value();
  auto sb = b.serve<GetPrice>("pricing").value();
  client.route_remote<GetPrice>();
  int ones = 0, twos = 0;
  for (int i = 0; i < 10; ++i) {
    auto r = client.query(GetPrice{"x"});
    REQUIRE(r);
    (*r == 1.0 ? ones : twos) += 1;
  }
  CHECK(ones > 0);
  CHECK(twos > 0);
  CHECK(ones + twos == 10);
}

TEST_CASE("every service serving a type gets the request; the first reply is used") {
  InMemoryTransport transport;
  Recorder<std::string> served;
  auto make = [&](std::string name) {
    return transport
        .serve("GetPrice", name,
               [&served, name](catga::Delivery& d) {
                 CHECK(d.subject() == "catga.cmd.GetPrice");
                 served.add(name);
                 nlohmann::json v = name == "a" ? 1.0 : 2.0;
                 return catga::wire::encode_reply({}, &v);
               })
        .value();
  };
  auto sa = make("a");
  auto sb = make("b");
  const std::string body = nlohmann::json(GetPrice{"x"}).dump();
  Context ctx = Context::root();
  auto reply = transport.request({catga::message_info<GetPrice>(), body, ctx});
  REQUIRE(reply);
  auto value = catga::wire::decode_reply(*reply);
  REQUIRE(value);
  CHECK((*value == 1.0 || *value == 2.0));
  REQUIRE(served.wait_size(2));
  auto who = served.items();
  std::sort(who.begin(), who.end());
  CHECK(who == std::vector<std::string>{"a", "b"});
}

TEST_CASE("a throwing request handler yields an error reply, not a crash") {
  InMemoryTransport transport;
  auto serving = transport
                     .serve("GetPrice", "pricing",
                            [](catga::Delivery&) -> std::string { throw std::runtime_error("pricing db gone"); })
                     .value();
  const std::string body = nlohmann::json(GetPrice{"x"}).dump();
  Context ctx = Context::root();
  auto reply = transport.request({catga::message_info<GetPrice>(), body, ctx});
  REQUIRE(reply);
  auto value = catga::wire::decode_reply(*reply);
  REQUIRE_FALSE(value);
  CHECK(value.error().code == catga::errc::exception);
  CHECK(value.error().message.find("pricing db gone") != std::string::npos);
}

TEST_CASE("an event handler can call a remote query") {
  InMemoryTransport transport;
  Mediator server, client;
  server.attach(transport);
  client.attach(transport);
  server.handle<GetPrice>([](const GetPrice&) { return 7.5; });
  auto serving = server.serve<GetPrice>("pricing").value();
  client.route_remote<GetPrice>();
  Recorder<double> prices;
  auto sub = client.subscribe<OrderPlaced>(opts("billing"), [&](const OrderPlaced&) -> catga::Status {
                auto r = client.query(GetPrice{"A-1"});
                if (!r) return std::move(r).error();
                prices.add(*r);
                return {};
              }).value();
  REQUIRE(client.publish(OrderPlaced{"A-1", 1}));
  REQUIRE(prices.wait_size(1));
  CHECK(prices.items() == std::vector<double>{7.5});
}

TEST_CASE("shutdown answers the request in flight and fails the queued one with unavailable") {
  InMemoryTransport transport;
  Mediator server, client;
  server.attach(transport);
  client.attach(transport);
  Gate arrived, release;
  server.handle<GetPrice>([&](const GetPrice& q) {
    if (q.sku == "first") {
      arrived.open();
      release.wait();
    }
    return 1.0;
  });
  auto serving = server.serve<GetPrice>("pricing").value();  // one worker
  client.route_remote<GetPrice>();

  std::optional<catga::Result<double>> first, second;
  std::thread caller1([&] { first.emplace(client.query(GetPrice{"first"})); });
  REQUIRE(arrived.wait());
  std::thread caller2([&] { second.emplace(client.query(GetPrice{"second"})); });
  REQUIRE(eventually([&] { return transport.group_stats("GetPrice", "pricing")->pending == 1; }));

  std::thread closer([&] { transport.shutdown(); });
  REQUIRE(eventually([&] { return transport.group_stats("GetPrice", "pricing")->members == 0; }));
  release.open();
  closer.join();
  caller1.join();
  caller2.join();

  REQUIRE(first);
  REQUIRE(*first);
  CHECK(**first == 1.0);
  REQUIRE(second);
  REQUIRE_FALSE(*second);
  CHECK(second->error().code == catga::errc::unavailable);
  CHECK(second->error().message.find("pricing") != std::string::npos);
}

TEST_CASE("a service holding serve_max_in_flight requests refuses one more at once with a retryable overloaded") {
  catga::InMemoryTransportOptions o;
  o.serve_max_in_flight = 2;  // one worker: one request running, one queued
  InMemoryTransport transport(o);
  Mediator server, client;
  server.attach(transport);
  client.attach(transport);
  Gate arrived, release;
  server.handle<GetPrice>([&](const GetPrice&) {
    arrived.open();
    release.wait();
    return 1.0;
  });
  auto serving = server.serve<GetPrice>("pricing").value();
  client.route_remote<GetPrice>();

  std::optional<catga::Result<double>> first, second;
  std::thread caller1([&] { first.emplace(client.query(GetPrice{"first"})); });
  REQUIRE(arrived.wait());
  std::thread caller2([&] { second.emplace(client.query(GetPrice{"second"})); });
  REQUIRE(eventually([&] { return transport.group_stats("GetPrice", "pricing")->pending == 1; }));

  const auto t0 = std::chrono::steady_clock::now();
  Context ctx = Context::root();
  ctx.deadline = Context::Clock::now() + 5s;  // a queued request would wait until here
  auto third = client.query(GetPrice{"third"}, ctx);
  REQUIRE_FALSE(third);
  CHECK(third.error().code == catga::errc::overloaded);
  CHECK(third.error().retryable);
  CHECK(third.error().message.find("pricing") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - t0 < 1s);

  release.open();
  caller1.join();
  caller2.join();
  REQUIRE(first);
  CHECK(first->ok());
  REQUIRE(second);
  CHECK(second->ok());
  CHECK(client.query(GetPrice{"after"}).ok());  // room again
}

TEST_CASE("a message type that cannot be a subject is refused by publish, request, subscribe and serve, as on NATS") {
  InMemoryTransport transport;
  const Context ctx = Context::root();
  for (std::string_view bad : {"Order*", ">", "Order Placed", "a..b", "a.", "", "$SYS.X"}) {
    INFO("type: ", std::string(bad));
    const catga::MessageInfo event{bad, catga::MessageKind::event, catga::QoS::at_least_once, 0, false,
                                   nullptr, nullptr, nullptr, nullptr};
    const catga::MessageInfo command{bad, catga::MessageKind::command, catga::QoS::at_least_once, 0, false,
                                     nullptr, nullptr, nullptr, nullptr};
    auto p = transport.publish({event, "{}", ctx});
    REQUIRE_FALSE(p);
    CHECK(p.error().code == catga::errc::validation);
    auto r = transport.request({command, "{}", ctx});
    REQUIRE_FALSE(r);
    CHECK(r.error().code == catga::errc::validation);
    auto s = transport.subscribe(bad, opts("g"), [](catga::Delivery&) { return catga::Status{}; });
    REQUIRE_FALSE(s);
    CHECK(s.error().code == catga::errc::validation);
    auto v = transport.serve(bad, "svc", [](catga::Delivery&) { return std::string(R"({"ok":true})"); });
    REQUIRE_FALSE(v);
    CHECK(v.error().code == catga::errc::validation);
  }
  CHECK(transport.stats().empty());  // no group or service was made
}
