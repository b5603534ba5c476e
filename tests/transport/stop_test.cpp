// Stopping subscriptions and the transport while messages are in flight.

#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "test_support.hpp"

using catga::Context;
using catga::InMemoryTransport;
using catga::Mediator;
using catga::Subscription;
using namespace tt;
using namespace std::chrono_literals;

namespace {

struct Handled {
  int member;
  std::string id;
  int attempt;
};

std::size_t count_member(const Recorder<Handled>& r, int member) {
  std::size_t n = 0;
  for (const auto& h : r.items()) n += h.member == member ? 1 : 0;
  return n;
}

std::size_t members_of(const InMemoryTransport& t, std::string_view group) {
  auto s = t.group_stats("OrderPlaced", group);
  return s ? s->members : 0;
}

}  // namespace

TEST_CASE("stopping a member with messages in flight loses nothing; its failure goes to the others") {
  InMemoryTransport transport;
  Mediator m;
  m.attach(transport);
  constexpr int kEvents = 300;
  Recorder<Handled> handled;
  Gate a_blocked, release;
  std::atomic<bool> first{true};
  std::atomic<bool> a_call_finished{false};
  std::string blocked_id;
  const catga::RetryPolicy retry{.max_deliver = 5, .backoff = {1ms}};

  auto sub_a = m.subscribe<OrderPlaced>(opts("g", 2, retry),
                                        [&](const OrderPlaced& e, Context& ctx) -> catga::Status {
                                          if (first.exchange(false)) {
                                            blocked_id = e.order_id;
                                            a_blocked.open();
                                            release.wait();
                                            a_call_finished = true;
                                            return catga::make_error("interrupted", "shutting down", true);
                                          }
                                          handled.add({0, e.order_id, ctx.attempt});
                                          return {};
                                        })
                   .value();
  std::vector<Subscription> others;
  for (int member = 1; member <= 2; ++member) {
    others.push_back(m.subscribe<OrderPlaced>(opts("g", 1, retry),
                                              [&handled, member](const OrderPlaced& e, Context& ctx) {
                                                handled.add({member, e.order_id, ctx.attempt});
                                              })
                         .value());
  }

  for (int i = 0; i < kEvents; ++i) REQUIRE(m.publish(OrderPlaced{"o-" + std::to_string(i), i}));
  REQUIRE(a_blocked.wait());

  std::atomic<bool> finished_when_stop_returned{false};
  std::size_t a_count_at_stop = 0;
  std::thread stopper([&] {
    sub_a.stop();
    finished_when_stop_returned = a_call_finished.load();
    a_count_at_stop = count_member(handled, 0);
  });
  // A leaves the group at once; its blocked call keeps stop() waiting.
  REQUIRE(eventually([&] { return members_of(transport, "g") == 2; }));
  release.open();
  stopper.join();
  CHECK(finished_when_stop_returned);

  REQUIRE(handled.wait_size(kEvents));
  REQUIRE(transport.wait_idle(kWaitMs));
  CHECK(count_member(handled, 0) == a_count_at_stop);  // nothing ran on A after stop()

  std::map<std::string, int> times;
  for (const auto& h : handled.items()) ++times[h.id];
  CHECK(handled.size() == kEvents);
  CHECK(times.size() == kEvents);
  for (const auto& entry : times) {
    CAPTURE(entry.first);
    CHECK(entry.second == 1);
  }
  // The call interrupted on A was redelivered to a remaining member.
  for (const auto& h : handled.items()) {
    if (h.id != blocked_id) continue;
    CHECK(h.member != 0);
    CHECK(h.attempt == 2);
  }
  CHECK(transport.dead_letters().empty());
}

TEST_CASE("events wait while a group has no members and go to the next subscriber") {
  InMemoryTransport transport;
  Mediator m;
  m.attach(transport);
  Recorder<std::string> handled;
  Gate arrived, release;
  std::atomic<bool> first{true};
  auto handler = [&](const OrderPlaced& e) {
    if (first.exchange(false)) {
      arrived.open();
      release.wait();
    }
    handled.add(e.order_id);
  };
  auto sub = m.subscribe<OrderPlaced>(opts("g"), handler).value();

  std::set<std::string> published;
  for (int i = 0; i < 50; ++i) {
    published.insert("o-" + std::to_string(i));
    REQUIRE(m.publish(OrderPlaced{"o-" + std::to_string(i), i}));
  }
  REQUIRE(arrived.wait());
  std::size_t handled_when_stop_returned = 0;
  std::thread stopper([&] {
    sub.stop();
    handled_when_stop_returned = handled.size();
  });
  REQUIRE(eventually([&] { return members_of(transport, "g") == 0; }));
  release.open();
  stopper.join();
  CHECK(handled_when_stop_returned == 1);  // stop() waited for the call in flight

  auto stats = transport.group_stats("OrderPlaced", "g");
  REQUIRE(stats);
  CHECK(stats->pending == 49);
  CHECK(stats->in_flight == 0);
  CHECK(handled.size() == 1);

  for (int i = 50; i < 60; ++i) {
    published.insert("o-" + std::to_string(i));
    REQUIRE(m.publish(OrderPlaced{"o-" + std::to_string(i), i}));
  }
  CHECK(transport.group_stats("OrderPlaced", "g")->pending == 59);

  auto resumed = m.subscribe<OrderPlaced>(opts("g", 2), handler).value();
  REQUIRE(handled.wait_size(60));
  REQUIRE(transport.wait_idle(kWaitMs));
  auto items = handled.items();
  CHECK(items.size() == 60);
  CHECK(std::set<std::string>(items.begin(), items.end()) == published);
}

TEST_CASE("a handler may stop its own subscription") {
  InMemoryTransport transport;
  Mediator m;
  m.attach(transport);
  Recorder<std::string> handled;
  Gate stopped;
  Subscription sub;
  sub = m.subscribe<OrderPlaced>(opts("g"), [&](const OrderPlaced& e) {
           handled.add(e.order_id);
           if (e.order_id == "stop") {
             sub.stop();  // cannot wait for itself; must not deadlock
             stopped.open();
           }
         }).value();
  REQUIRE(m.publish(OrderPlaced{"a", 1}));
  REQUIRE(m.publish(OrderPlaced{"stop", 2}));
  REQUIRE(stopped.wait());
  REQUIRE(m.publish(OrderPlaced{"b", 3}));
  REQUIRE(eventually([&] {
    auto s = transport.group_stats("OrderPlaced", "g");
    return s->acked == 2 && s->pending == 1;
  }));
  CHECK(members_of(transport, "g") == 0);
  CHECK(handled.items() == std::vector<std::string>{"a", "stop"});
  CHECK_FALSE(sub.active());
}

TEST_CASE("shutdown waits for handler calls in flight") {
  InMemoryTransport transport;
  Mediator m;
  m.attach(transport);
  Gate arrived, release;
  std::atomic<bool> finished{false};
  auto sub = m.subscribe<OrderPlaced>(opts("g"), [&](const OrderPlaced&) {
                arrived.open();
                release.wait();
                finished = true;
              }).value();
  REQUIRE(m.publish(OrderPlaced{"a", 1}));
  REQUIRE(arrived.wait());
  std::atomic<bool> finished_when_shutdown_returned{false};
  std::thread closer([&] {
    transport.shutdown();
    finished_when_shutdown_returned = finished.load();
  });
  // Publishing fails as soon as shutdown has begun.
  REQUIRE(eventually([&] { return !m.publish(OrderPlaced{"probe", 0}); }));
  release.open();
  closer.join();
  CHECK(finished_when_shutdown_returned);
  CHECK(members_of(transport, "g") == 0);
}
