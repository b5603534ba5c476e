// The pull/fetch path under AddressSanitizer (this executable and its copy of
// the catga::nats sources are built with -fsanitize=address). nats.c 3.4.1's
// natsSubscription_Fetch overflows a heap array when queued leftovers exceed
// half the batch; catga writes its own pull requests instead. These cases
// make leftovers and partial batches happen on purpose.
#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "nats_server.hpp"
#include "raw_nats.hpp"
#include "test_messages.hpp"
#include "wait_for.hpp"

using namespace std::chrono_literals;
using catga::test::wait_for;

namespace {

struct Ledger {
  std::mutex mu;
  std::map<int, int> seen;
  std::atomic<int> total{0};
  void add(int n) {
    std::lock_guard lock(mu);
    ++seen[n];
    ++total;
  }
  bool each_once(int n) {
    std::lock_guard lock(mu);
    if (static_cast<int>(seen.size()) != n) return false;
    for (auto& [k, v] : seen) {
      if (v != 1) return false;
    }
    return true;
  }
};

bool settled(catga::nats::JetStreamTransport& t) {
  for (const auto& c : t.health().consumers) {
    if (!c.reachable || c.lag() != 0) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("asan: this test and its catga::nats copy are instrumented") {
#if defined(__SANITIZE_ADDRESS__)
  CHECK(true);
#else
  FAIL("built without -fsanitize=address");
#endif
}

TEST_CASE("asan: small batches with slow workers leave leftovers queued between requests") {
  catga::test::NatsServer server;
  auto js = nt::js_options();
  js.consumer.batch = 8;
  js.consumer.fetch_expires = 300ms;
  auto t = nt::make_transport(server, js);
  catga::Mediator m;
  m.attach(*t);
  Ledger ledger;
  auto sub = m.subscribe<nt::OrderPlaced>(nt::group("asan", 3), [&](const nt::OrderPlaced& e) {
    if (e.amount % 50 == 0) std::this_thread::sleep_for(20ms);  // a slow one now and then
    ledger.add(e.amount);
  });
  REQUIRE(sub);
  constexpr int kEvents = 600;
  for (int i = 0; i < kEvents; ++i) {
    REQUIRE(t->publish_async(nt::OrderPlaced{"x", i}, [](const catga::nats::PublishOutcome&) {}));
  }
  REQUIRE(t->flush(30s));
  REQUIRE(wait_for([&] { return ledger.total.load() >= kEvents; }, 60s));
  REQUIRE(wait_for([&] { return settled(*t); }));
  CHECK(ledger.each_once(kEvents));
}

TEST_CASE("asan: partial batches and expiring requests while events trickle in") {
  catga::test::NatsServer server;
  auto js = nt::js_options();
  js.consumer.batch = 64;
  js.consumer.fetch_expires = 100ms;  // many 408s, most requests end partially filled
  auto t = nt::make_transport(server, js);
  catga::Mediator m;
  m.attach(*t);
  Ledger ledger;
  auto sub = m.subscribe<nt::OrderPlaced>(nt::group("trickle", 2), [&](const nt::OrderPlaced& e) { ledger.add(e.amount); });
  REQUIRE(sub);
  for (int i = 0; i < 60; ++i) {
    REQUIRE(m.publish(nt::OrderPlaced{"t", i}));
    if (i % 10 == 0) std::this_thread::sleep_for(120ms);  // let requests expire between bursts
  }
  REQUIRE(wait_for([&] { return ledger.total.load() >= 60; }));
  REQUIRE(wait_for([&] { return settled(*t); }));
  CHECK(ledger.each_once(60));
}

TEST_CASE("asan: stop with messages queued, a deleted consumer, and a second member finishing the work") {
  catga::test::NatsServer server;
  auto js = nt::js_options();
  js.consumer.batch = 32;
  js.consumer.ack_wait = 3s;
  js.consumer.fetch_expires = 300ms;
  auto a = nt::make_transport(server, js, "a");
  auto b = nt::make_transport(server, js, "b");
  catga::Mediator ma, mb;
  ma.attach(*a);
  mb.attach(*b);
  Ledger ledger;
  auto slow = ma.subscribe<nt::OrderPlaced>(nt::group("g", 1), [&](const nt::OrderPlaced& e) {
    std::this_thread::sleep_for(2ms);
    ledger.add(e.amount);
  });
  REQUIRE(slow);
  constexpr int kEvents = 300;
  for (int i = 0; i < kEvents; ++i) REQUIRE(ma.publish(nt::OrderPlaced{"s", i}));
  REQUIRE(wait_for([&] { return ledger.total.load() >= 10; }));
  // Stop with a short timeout: queued leftovers are nak'ed, not handled.
  slow->stop();
  auto fast = mb.subscribe<nt::OrderPlaced>(nt::group("g", 4), [&](const nt::OrderPlaced& e) { ledger.add(e.amount); });
  REQUIRE(fast);
  REQUIRE(wait_for([&] { return ledger.total.load() >= kEvents; }, 60s));
  REQUIRE(wait_for([&] { return settled(*b); }));
  CHECK(ledger.each_once(kEvents));

  // The consumer disappears under the subscription: 409 / silence, then it is recreated.
  {
    catga::test::RawNats raw(server.url());
    jsErrCode jerr{};
    catga::test::check(js_DeleteConsumer(raw.js(), "CATGA_EVENTS", "g_OrderPlaced", nullptr, &jerr), "delete consumer");
  }
  std::atomic<int> after{0};
  auto watcher = mb.subscribe<nt::OrderPlaced>(nt::group("late", 1), [&](const nt::OrderPlaced&) { after++; });
  REQUIRE(watcher);
  REQUIRE(wait_for([&] {
    auto h = b->health();
    for (auto& c : h.consumers) {
      if (c.group == "g" && c.reachable) return true;
    }
    return false;
  }));
  REQUIRE(wait_for([&] { return after.load() == kEvents; }));
}
