// Publishing: stored on return, QoS, dedup, unreachable broker, async window.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <vector>

#include "nats_server.hpp"
#include "raw_nats.hpp"
#include "stream_reader.hpp"
#include "test_messages.hpp"
#include "wait_for.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST_CASE("an at-least-once publish has been stored by the stream when it returns") {
  catga::test::NatsServer server;
  auto t = nt::make_transport(server);
  catga::Mediator m;
  m.attach(*t);
  catga::test::RawNats raw(server.url());
  for (int i = 1; i <= 20; ++i) {
    REQUIRE(m.publish(nt::OrderPlaced{"o-" + std::to_string(i), i}));
    CHECK(nt::stream_count(raw, "CATGA_EVENTS") == static_cast<std::uint64_t>(i));  // no waiting
  }
}

TEST_CASE("an at-most-once event goes out as a core publish") {
  catga::test::NatsServer server;
  auto t = nt::make_transport(server);
  catga::Mediator m;
  m.attach(*t);
  catga::test::RawNats raw(server.url());
  natsSubscription* sub = nullptr;
  catga::test::check(natsConnection_SubscribeSync(&sub, raw.nc(), "catga.evt.Ping"), "subscribe");
  catga::test::check(natsConnection_Flush(raw.nc()), "flush");
  REQUIRE(m.publish(nt::Ping{7}));
  natsMsg* msg = nullptr;
  REQUIRE(natsSubscription_NextMsg(&msg, sub, 10000) == NATS_OK);
  CHECK(std::string(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))) == R"({"n":7})");
  // Core publish: no JetStream ack was asked for (a pub ack would carry a reply subject).
  CHECK(natsMsg_GetReply(msg) == nullptr);
  natsMsg_Destroy(msg);
  natsSubscription_Destroy(sub);
}

TEST_CASE("the same message id published twice is stored once") {
  catga::test::NatsServer server;
  auto t = nt::make_transport(server);
  catga::Mediator m;
  m.attach(*t);
  auto ctx = catga::Context::root();
  REQUIRE(m.publish(nt::OrderPlaced{"dup", 1}, ctx));
  REQUIRE(m.publish(nt::OrderPlaced{"dup", 1}, ctx));
  REQUIRE(m.publish(nt::OrderPlaced{"other", 2}));
  catga::test::RawNats raw(server.url());
  CHECK(nt::stream_count(raw, "CATGA_EVENTS") == 2);

  std::atomic<int> outcomes{0};
  std::atomic<bool> duplicate{false};
  const auto& info = catga::message_info<nt::OrderPlaced>();
  const std::string body = R"({"amount":1,"order_id":"dup"})";
  ctx.message_type = info.name;
  REQUIRE(t->publish_async(catga::OutboundMessage{info, body, ctx}, [&](const catga::nats::PublishOutcome& o) {
    CHECK(o.status.ok());
    duplicate = o.duplicate;
    outcomes++;
  }));
  REQUIRE(t->flush(10s));
  CHECK(outcomes.load() == 1);
  CHECK(duplicate.load());
  CHECK(nt::stream_count(raw, "CATGA_EVENTS") == 2);
}

TEST_CASE("with the broker unreachable, publish fails with a retryable error at the deadline, not a hang") {
  catga::test::NatsServer server;
  auto js = nt::js_options();
  js.publish_timeout = 500ms;
  auto t = nt::make_transport(server, js);
  catga::Mediator m;
  m.attach(*t);
  REQUIRE(m.publish(nt::OrderPlaced{"before", 1}));
  server.stop();

  auto ctx = catga::Context::root();
  ctx.deadline = Clock::now() + 700ms;
  const auto t0 = Clock::now();
  auto s = m.publish(nt::OrderPlaced{"during", 2}, ctx);
  const auto took = Clock::now() - t0;
  REQUIRE_FALSE(s);
  CHECK(s.error().retryable);
  CHECK((s.error().code == "timeout" || s.error().code == "unavailable"));
  CHECK(took < 20s);  // returned: bounded by the deadline, not by the outage

  // No deadline in the context: publish_timeout applies.
  auto s2 = m.publish(nt::OrderPlaced{"during", 3});
  REQUIRE_FALSE(s2);
  CHECK(s2.error().retryable);

  // Async: the outcome arrives as a retryable failure.
  std::atomic<int> failures{0};
  const auto& info = catga::message_info<nt::OrderPlaced>();
  auto actx = catga::Context::root();
  actx.deadline = Clock::now() + 500ms;
  REQUIRE(t->publish_async(catga::OutboundMessage{info, R"({"amount":4,"order_id":"a"})", actx},
                           [&](const catga::nats::PublishOutcome& o) {
                             if (!o.status && o.status.error().retryable) failures++;
                           }));
  CHECK(catga::test::wait_for([&] { return failures.load() == 1; }));

  // Health says so.
  auto h = t->health(200ms);
  CHECK_FALSE(h.ready());
  CHECK(h.connection != catga::nats::ConnectionState::connected);
  CHECK(h.last_error.has_value());

  // The server comes back on the same store: publishing works again.
  server.start();
  REQUIRE(t->connection()->wait_connected(30s));
  auto again = catga::Context::root();
  again.deadline = Clock::now() + 30s;
  CHECK(m.publish(nt::OrderPlaced{"after", 5}, again));
}

TEST_CASE("publish_async keeps a bounded window and reports every outcome") {
  catga::test::NatsServer server;
  auto js = nt::js_options();
  js.max_async_pending = 32;
  auto t = nt::make_transport(server, js);
  constexpr int kEvents = 2000;
  std::mutex mu;
  std::set<std::uint64_t> sequences;
  std::set<std::string> ids;
  std::atomic<int> errors{0};
  // In flight = handed over and still without an outcome; the window bounds it.
  std::atomic<int> completed{0};
  int max_in_flight = 0;
  for (int i = 0; i < kEvents; ++i) {
    REQUIRE(t->publish_async(nt::OrderPlaced{"a-" + std::to_string(i), i}, [&](const catga::nats::PublishOutcome& o) {
      completed++;
      if (!o.status) {
        errors++;
        return;
      }
      std::lock_guard lock(mu);
      sequences.insert(o.sequence);
      ids.insert(o.message_id);
    }));
    max_in_flight = std::max(max_in_flight, i + 1 - completed.load());
  }
  REQUIRE(t->flush(30s));
  CHECK(max_in_flight <= 32);
  CHECK(completed.load() == kEvents);
  CHECK(errors.load() == 0);
  std::lock_guard lock(mu);
  CHECK(sequences.size() == kEvents);
  CHECK(ids.size() == kEvents);
  CHECK(*sequences.rbegin() == kEvents);
  catga::test::RawNats raw(server.url());
  CHECK(nt::stream_count(raw, "CATGA_EVENTS") == kEvents);
}

TEST_CASE("a stopped transport refuses to publish") {
  catga::test::NatsServer server;
  auto t = nt::make_transport(server);
  catga::Mediator m;
  m.attach(*t);
  REQUIRE(t->stop(5s));
  CHECK(t->stopped());
  auto s = m.publish(nt::OrderPlaced{"late", 1});
  REQUIRE_FALSE(s);
  CHECK(s.error().code == "unavailable");
  CHECK(t->stop(5s));  // idempotent
  CHECK_FALSE(t->health().ready());
}
