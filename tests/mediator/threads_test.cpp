// Dispatch from many threads at once, after registration.

#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "test_messages.hpp"

using namespace catga_test;

TEST_CASE("send, query and publish from 8 threads: every call is handled once") {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 10'000;

  catga::Mediator m;
  std::atomic<std::int64_t> handled{0};
  std::atomic<std::int64_t> behavior_calls{0};
  std::atomic<std::int64_t> events_a{0};
  std::atomic<std::int64_t> events_b{0};
  m.use(catga::make_behavior([&](catga::Invocation&, catga::Next next) {
    behavior_calls.fetch_add(1, std::memory_order_relaxed);
    return next();
  }));
  m.handle<Add>([&](const Add& a) {
    handled.fetch_add(1, std::memory_order_relaxed);
    return a.x + a.y;
  });
  m.handle<GetPrice>([](const GetPrice&) { return Price{"EUR", 1}; });
  m.on<OrderPlaced>([&](const OrderPlaced&) { events_a.fetch_add(1, std::memory_order_relaxed); });
  m.on<OrderPlaced>([&](const OrderPlaced&) { events_b.fetch_add(1, std::memory_order_relaxed); });

  std::vector<std::int64_t> sums(kThreads, 0);
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      for (int i = 0; i < kPerThread; ++i) {
        auto r = m.send(Add{t, i});
        if (r) {
          sums[t] += *r;
        } else {
          ++failures[t];
        }
        if (i % 10 == 0) {
          if (!m.query(GetPrice{"A"})) ++failures[t];
          if (!m.publish(OrderPlaced{"o", 1})) ++failures[t];
        }
      }
    });
  }
  go.store(true, std::memory_order_release);
  for (auto& th : threads) th.join();

  constexpr std::int64_t kSideCalls = kPerThread / 10;
  for (int t = 0; t < kThreads; ++t) {
    CAPTURE(t);
    CHECK(failures[t] == 0);
    // sum over i of (t + i)
    CHECK(sums[t] ==
          static_cast<std::int64_t>(t) * kPerThread + static_cast<std::int64_t>(kPerThread) * (kPerThread - 1) / 2);
  }
  CHECK(handled.load() == static_cast<std::int64_t>(kThreads) * kPerThread);
  CHECK(events_a.load() == kThreads * kSideCalls);
  CHECK(events_b.load() == kThreads * kSideCalls);
  // One behavior call per send, per query, and per event handler.
  CHECK(behavior_calls.load() == kThreads * (kPerThread + kSideCalls + 2 * kSideCalls));
}

TEST_CASE("handlers dispatching nested messages from many threads keep their own contexts") {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2'000;
  catga::Mediator m;
  std::atomic<int> mismatches{0};
  m.handle<ShipOrder>([&](const ShipOrder& c, catga::Context& ctx) {
    // The outer message id travels in the command; causation must match it.
    if (ctx.causation_id.text().view() != c.order_id) mismatches.fetch_add(1);
  });
  m.handle<PlaceOrder>([&](const PlaceOrder&, catga::Context& ctx) -> catga::Result<std::string> {
    auto s = m.send(ShipOrder{ctx.message_id.text().str(), 0});
    if (!s) return std::move(s).error();
    return std::string("ok");
  });
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        if (!m.send(PlaceOrder{})) failures.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures.load() == 0);
  CHECK(mismatches.load() == 0);
}
