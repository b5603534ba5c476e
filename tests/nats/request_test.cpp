// Remote commands and queries: request/reply with queue groups.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "nats_server.hpp"
#include "test_messages.hpp"
#include "wait_for.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

struct Node {
  explicit Node(const catga::test::NatsServer& server, std::string name)
      : transport(nt::make_transport(server, nt::js_options(), std::move(name))) {
    mediator.attach(*transport);
  }
  std::unique_ptr<catga::nats::JetStreamTransport> transport;
  catga::Mediator mediator;
};

}  // namespace

TEST_CASE("a remote command round-trips to the service that serves it, load-balanced in its queue group") {
  catga::test::NatsServer server;
  Node client(server, "client");
  client.mediator.route_remote<nt::Add>();
  Node s1(server, "calc-1"), s2(server, "calc-2");
  std::atomic<int> calls1{0}, calls2{0};
  s1.mediator.handle<nt::Add>([&](const nt::Add& a) {
    calls1++;
    return a.a + a.b;
  });
  s2.mediator.handle<nt::Add>([&](const nt::Add& a) {
    calls2++;
    return a.a + a.b;
  });
  auto sub1 = s1.mediator.serve<nt::Add>("calculator");
  auto sub2 = s2.mediator.serve<nt::Add>("calculator");
  REQUIRE(sub1);
  REQUIRE(sub2);
  for (int i = 0; i < 200; ++i) {
    auto r = client.mediator.send(nt::Add{i, 1});
    REQUIRE(r);
    CHECK(*r == i + 1);
  }
  CHECK(calls1.load() + calls2.load() == 200);
  CHECK(calls1.load() > 0);
  CHECK(calls2.load() > 0);
}

TEST_CASE("the caller's context travels with a remote query") {
  catga::test::NatsServer server;
  Node client(server, "client");
  client.mediator.route_remote<nt::Slow>();
  Node svc(server, "svc");
  catga::MessageId seen_correlation;
  bool had_deadline = false;
  svc.mediator.handle<nt::Slow>([&](const nt::Slow& q, catga::Context& ctx) {
    seen_correlation = ctx.correlation_id;
    had_deadline = ctx.has_deadline();
    return q.ms * 2;
  });
  auto sub = svc.mediator.serve<nt::Slow>("slow");
  REQUIRE(sub);
  auto ctx = catga::Context::root();
  ctx.deadline = Clock::now() + 10s;
  auto r = client.mediator.query(nt::Slow{21}, ctx);
  REQUIRE(r);
  CHECK(*r == 42);
  CHECK(seen_correlation == ctx.correlation_id);
  CHECK(had_deadline);
}

TEST_CASE("a handler error comes back as the same Error") {
  catga::test::NatsServer server;
  Node client(server, "client");
  client.mediator.route_remote<nt::Fail>();
  Node svc(server, "svc");
  svc.mediator.handle<nt::Fail>([](const nt::Fail& f) -> catga::Status {
    if (f.why == "throw") throw std::runtime_error("boom");
    return catga::make_error("out_of_stock", "sku " + f.why, true);
  });
  auto sub = svc.mediator.serve<nt::Fail>("stock");
  REQUIRE(sub);
  auto r = client.mediator.send(nt::Fail{"A-1"});
  REQUIRE_FALSE(r);
  CHECK(r.error() == catga::make_error("out_of_stock", "sku A-1", true));
  auto thrown = client.mediator.send(nt::Fail{"throw"});
  REQUIRE_FALSE(thrown);
  CHECK(thrown.error().code == "exception");
  CHECK(thrown.error().message.find("boom") != std::string::npos);
}

TEST_CASE("nobody serving the type: an immediate no_handler error") {
  catga::test::NatsServer server;
  Node client(server, "client");
  client.mediator.route_remote<nt::Add>();
  auto ctx = catga::Context::root();
  ctx.deadline = Clock::now() + 30s;
  const auto t0 = Clock::now();
  auto r = client.mediator.send(nt::Add{1, 2}, ctx);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "no_handler");
  CHECK_FALSE(r.error().retryable);
  CHECK(r.error().message.find("Add") != std::string::npos);
  CHECK(Clock::now() - t0 < 15s);  // did not wait for the deadline
}

TEST_CASE("a reply that does not come before the deadline: a retryable timeout") {
  catga::test::NatsServer server;
  Node client(server, "client");
  client.mediator.route_remote<nt::Slow>();
  Node svc(server, "svc");
  svc.mediator.handle<nt::Slow>([](const nt::Slow& q) {
    std::this_thread::sleep_for(std::chrono::milliseconds(q.ms));  // the slow work
    return q.ms;
  });
  auto sub = svc.mediator.serve<nt::Slow>("slow");
  REQUIRE(sub);
  auto ctx = catga::Context::root();
  ctx.deadline = Clock::now() + 300ms;
  auto r = client.mediator.query(nt::Slow{1500}, ctx);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "timeout");
  CHECK(r.error().retryable);

  auto past = catga::Context::root();
  past.deadline = Clock::now() - 1ms;
  auto late = client.mediator.query(nt::Slow{1}, past);
  REQUIRE_FALSE(late);
  CHECK(late.error().code == "timeout");
}

TEST_CASE("a stopped serve subscription leaves the queue group") {
  catga::test::NatsServer server;
  Node client(server, "client");
  client.mediator.route_remote<nt::Add>();
  Node svc(server, "svc");
  svc.mediator.handle<nt::Add>([](const nt::Add& a) { return a.a + a.b; });
  auto sub = svc.mediator.serve<nt::Add>("calculator");
  REQUIRE(sub);
  REQUIRE(client.mediator.send(nt::Add{1, 1}));
  CHECK(svc.transport->health().responders == 1);
  sub->stop();
  CHECK(svc.transport->health().responders == 0);
  auto r = client.mediator.send(nt::Add{1, 1});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "no_handler");
}

// Before: a request sent right after the client reconnected to a restarted
// server failed at once with no_handler (non-retryable) while the service was
// still reconnecting; a saga step then counted as failed although the
// service was only a moment away.
TEST_CASE("right after a reconnect, 'no responders' is asked again within the deadline while services resubscribe") {
  catga::test::NatsServer server;
  Node client(server, "client");
  client.mediator.route_remote<nt::Add>();
  // The service comes back 3 s after the server (its reconnect pause).
  auto svc_nats = nt::nats_options(server, "svc");
  svc_nats.reconnect_wait = 3s;
  svc_nats.max_reconnect_wait = 3s;
  svc_nats.reconnect_jitter = 0ms;
  auto svc_transport = catga::nats::JetStreamTransport::create(svc_nats, nt::js_options()).value();
  catga::Mediator svc;
  svc.attach(*svc_transport);
  std::atomic<int> calls{0};
  svc.handle<nt::Add>([&](const nt::Add& a) {
    calls++;
    return a.a + a.b;
  });
  auto sub = svc.serve<nt::Add>("calc");
  REQUIRE(sub);
  REQUIRE(client.mediator.send(nt::Add{1, 1}).value() == 2);

  server.restart();
  const auto& client_conn = client.transport->connection();
  REQUIRE(catga::test::wait_for([&] { return client_conn->reconnects() > 0; }, 20s));
  const bool svc_still_away = svc_transport->connection()->reconnects() == 0;
  auto ctx = catga::Context::root();
  ctx.deadline = Clock::now() + 15s;
  auto r = client.mediator.send(nt::Add{20, 22}, ctx);
  CHECK(svc_still_away);  // else this run did not exercise the window
  REQUIRE(r);
  CHECK(*r == 42);
  CHECK(calls.load() == 2);
}
