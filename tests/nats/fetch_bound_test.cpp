// The pull consumer's request bookkeeping, seen from the server: while every
// handler is blocked, the messages delivered and not acked (the server's
// num_ack_pending) stay within 3 x batch + workers, across several expiries
// of the pull requests, and yet more than one batch is fetched ahead. Then
// everything is handled exactly once.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "nats_server.hpp"
#include "test_messages.hpp"
#include "wait_for.hpp"

namespace {

using namespace std::chrono_literals;

// Blocks every handler call until open() is called.
class Gate {
 public:
  void pass() {
    std::unique_lock lock(mu_);
    ++waiting_;
    cv_.wait(lock, [&] { return open_; });
  }
  void open() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  int waiting() {
    std::lock_guard lock(mu_);
    return waiting_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int waiting_ = 0;
};

void check_bound(std::size_t workers) {
  CAPTURE(workers);
  constexpr int kBatch = 10;
  constexpr int kEvents = 500;
  catga::test::NatsServer server;
  auto js = nt::js_options();
  js.consumer.batch = kBatch;
  js.consumer.fetch_expires = 300ms;  // several request expiries while blocked
  auto t = nt::make_transport(server, js);
  catga::Mediator m;
  m.attach(*t);
  for (int i = 0; i < kEvents; ++i) REQUIRE(m.publish(nt::OrderPlaced{"o-" + std::to_string(i), i}));

  Gate gate;
  std::mutex mu;
  std::multiset<int> seen;
  auto sub = m.subscribe<nt::OrderPlaced>(nt::group("bound", workers), [&](const nt::OrderPlaced& e) {
    gate.pass();
    std::lock_guard lock(mu);
    seen.insert(e.amount);
  });
  REQUIRE(sub);
  REQUIRE(catga::test::wait_for([&] { return gate.waiting() == static_cast<int>(workers); }, 10s));

  const std::uint64_t bound = 3 * kBatch + workers;
  std::uint64_t most = 0;
  // 2 s: about six request expiries. A request closed too early, or never,
  // shows as more messages handed out than there is room for.
  const auto until = std::chrono::steady_clock::now() + 2s;
  while (std::chrono::steady_clock::now() < until) {
    auto h = t->health(2s);
    REQUIRE(h.consumers.size() == 1);
    REQUIRE(h.consumers[0].reachable);
    most = std::max(most, h.consumers[0].num_ack_pending);
    CHECK(h.consumers[0].num_ack_pending <= bound);
    std::this_thread::sleep_for(100ms);
  }
  MESSAGE("most delivered and not acked while blocked: " << most << " (bound " << bound << ")");
  CHECK(most > static_cast<std::uint64_t>(kBatch));  // fetched ahead: more than the running batch

  gate.open();
  REQUIRE(catga::test::wait_for(
      [&] {
        std::lock_guard lock(mu);
        return seen.size() >= kEvents;
      },
      30s));
  std::this_thread::sleep_for(300ms);  // a duplicate would arrive now
  std::lock_guard lock(mu);
  CHECK(seen.size() == kEvents);
  for (int i = 0; i < kEvents; ++i) CHECK(seen.count(i) == 1);
}

}  // namespace

TEST_CASE("pull consumer: handlers on the fetch thread, fetched ahead within 3 x batch + 1") { check_bound(1); }

TEST_CASE("pull consumer: four workers, fetched ahead within 3 x batch + 4") { check_bound(4); }
