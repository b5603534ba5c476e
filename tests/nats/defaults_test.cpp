// Delivery promises under the library's DEFAULT options (JetStreamOptions{},
// SubscribeOptions{} with only a group): what users run. Nothing here tunes
// ack_wait, batch, leases or waits.
#include <doctest/doctest.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "nats_server.hpp"
#include "raw_nats.hpp"
#include "test_messages.hpp"
#include "wait_for.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::unique_ptr<catga::nats::JetStreamTransport> default_transport(const catga::test::NatsServer& server,
                                                                   std::string name) {
  catga::nats::NatsOptions o;
  o.servers = {server.url()};
  o.name = std::move(name);
  auto t = catga::nats::JetStreamTransport::create(std::move(o), catga::nats::JetStreamOptions{});
  if (!t) throw catga::Exception(t.error());
  return std::move(*t);
}

}  // namespace

// Before the fix a member held up to 3 x batch + 1 = 385 messages while
// only the running one got "+WPI": with 200 ms handlers the 385th waited 77 s,
// past the default 30 s ack wait, and was handed to another member too.
TEST_CASE("defaults: 3 members, 200 ms handlers, 5,000 events: none handled twice, none redelivered or dead-lettered") {
  constexpr int kEvents = 5000;
  constexpr int kMembers = 3;
  catga::test::NatsServer server;
  auto publisher = default_transport(server, "publisher");
  catga::Mediator pm;
  pm.attach(*publisher);
  for (int i = 0; i < kEvents; ++i) REQUIRE(pm.publish(nt::OrderPlaced{"o-" + std::to_string(i), i}));

  std::mutex mu;
  std::map<int, int> handled;  // amount -> times
  std::atomic<int> total{0};
  std::atomic<int> most_attempts{0};
  std::vector<std::unique_ptr<catga::nats::JetStreamTransport>> transports;
  std::vector<std::unique_ptr<catga::Mediator>> mediators;
  std::vector<catga::Subscription> subs;
  for (int m = 0; m < kMembers; ++m) {
    transports.push_back(default_transport(server, "member-" + std::to_string(m)));
    mediators.push_back(std::make_unique<catga::Mediator>());
    mediators.back()->attach(*transports.back());
  }
  for (int m = 0; m < kMembers; ++m) {
    auto sub = mediators[m]->subscribe<nt::OrderPlaced>(
        catga::SubscribeOptions{.group = "slow"}, [&, rng = std::minstd_rand(17 + m)](const nt::OrderPlaced& e, catga::Context& ctx) mutable {
          // 100-300 ms, 200 ms on average.
          std::this_thread::sleep_for(std::chrono::milliseconds(100 + static_cast<int>(rng() % 201)));
          std::lock_guard lock(mu);
          ++handled[e.amount];
          ++total;
          most_attempts = std::max(most_attempts.load(), ctx.attempt);
        });
    REQUIRE(sub);
    subs.push_back(std::move(*sub));
  }
  // 5,000 x 200 ms over 3 members: about 330 s.
  const bool done = catga::test::wait_for([&] { return total.load() >= kEvents; }, 560s);
  std::this_thread::sleep_for(1s);  // a late duplicate would land now
  std::uint64_t dead_lettered = 0, lag = 0;
  for (auto& t : transports) {
    auto h = t->health(5s);
    for (const auto& c : h.consumers) {
      lag = c.num_pending + c.num_ack_pending;  // the same server-side consumer for all
      dead_lettered += c.dead_lettered;
    }
  }
  subs.clear();
  std::lock_guard lock(mu);
  int twice = 0, missing = 0;
  for (int i = 0; i < kEvents; ++i) {
    const auto it = handled.find(i);
    if (it == handled.end()) {
      ++missing;
    } else if (it->second > 1) {
      ++twice;
    }
  }
  MESSAGE("handled " << total.load() << ", twice " << twice << ", missing " << missing << ", most attempts "
                     << most_attempts.load() << ", dead-lettered " << dead_lettered << ", lag " << lag);
  CHECK(done);
  CHECK(missing == 0);
  CHECK(twice == 0);
  CHECK(most_attempts.load() == 1);  // no delivery ran out of ack wait
  CHECK(lag == 0);
  CHECK(dead_lettered == 0);
}

// nats-server 2.9.10 hands a redelivery to a pull request whose inbox is gone
// and rewinds the consumer. Before the fix, stop() unsubscribed the pull inbox
// while its requests were still open, so a message nak'ed (delay 0) during the
// stop waited a whole ack wait (30 s) before anyone got it again.
TEST_CASE("defaults: a message nak'ed while its member stops is handled again at once, not after the ack wait") {
  catga::test::NatsServer server;
  auto publisher = default_transport(server, "publisher");
  catga::Mediator pm;
  pm.attach(*publisher);
  REQUIRE(pm.publish(nt::OrderPlaced{"o-1", 1}));

  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, gate = false;
  std::vector<int> attempts;
  std::atomic<bool> done{false};
  Clock::time_point done_at{};
  auto handler = [&](const nt::OrderPlaced&, catga::Context& ctx) -> catga::Status {
    std::unique_lock lock(mu);
    attempts.push_back(ctx.attempt);
    if (attempts.size() == 1) {  // the first delivery fails once the stop has begun
      entered = true;
      cv.notify_all();
      cv.wait(lock, [&] { return gate; });
      return catga::make_error("busy", "try again", true);
    }
    done_at = Clock::now();
    done = true;
    return {};
  };
  catga::SubscribeOptions opts{.group = "g"};
  opts.retry.backoff = {0ms};  // nak without delay

  auto a = default_transport(server, "member-a");
  catga::Mediator am;
  am.attach(*a);
  auto sub_a = am.subscribe<nt::OrderPlaced>(opts, handler);
  REQUIRE(sub_a);
  {
    std::unique_lock lock(mu);
    REQUIRE(cv.wait_for(lock, 10s, [&] { return entered; }));
  }
  std::thread stopper([&] { sub_a->stop(); });
  std::this_thread::sleep_for(300ms);  // the stop has begun
  Clock::time_point failed_at;
  {
    std::lock_guard lock(mu);
    gate = true;
    failed_at = Clock::now();
  }
  cv.notify_all();
  stopper.join();
  {
    // The stop left no pull request open at the server.
    catga::test::RawNats raw(server.url());
    jsConsumerInfo* ci = nullptr;
    jsErrCode jerr{};
    REQUIRE(js_GetConsumerInfo(&ci, raw.js(), "CATGA_EVENTS", "g_OrderPlaced", nullptr, &jerr) == NATS_OK);
    CHECK(ci->NumWaiting == 0);
    jsConsumerInfo_Destroy(ci);
  }

  auto b = default_transport(server, "member-b");
  catga::Mediator bm;
  bm.attach(*b);
  auto sub_b = bm.subscribe<nt::OrderPlaced>(opts, handler);
  REQUIRE(sub_b);
  REQUIRE(catga::test::wait_for([&] { return done.load(); }, 60s));
  std::this_thread::sleep_for(1s);  // a rewound consumer would deliver again now
  std::lock_guard lock(mu);
  const auto after = std::chrono::duration_cast<std::chrono::milliseconds>(done_at - failed_at);
  MESSAGE("handled again " << after.count() << " ms after the nak");
  CHECK(after < 10s);  // not a whole ack wait
  REQUIRE(attempts.size() == 2);
  CHECK(attempts[0] == 1);
  CHECK(attempts[1] == 2);
}

// With several workers and slow handlers the holding limit falls below a
// batch; the fetcher then waits for room. Before the fix it asked for a whole
// batch of room it could never get, so its wait returned at once and the
// fetch thread spun at full CPU while the handlers slept.
TEST_CASE("defaults: four workers with slow handlers do not make the fetch thread spin") {
  catga::test::NatsServer server;
  auto t = default_transport(server, "member");
  catga::Mediator m;
  m.attach(*t);
  for (int i = 0; i < 200; ++i) REQUIRE(m.publish(nt::OrderPlaced{"o-" + std::to_string(i), i}));
  std::atomic<int> handled{0};
  auto sub = m.subscribe<nt::OrderPlaced>(catga::SubscribeOptions{.group = "g", .workers = 4},
                                          [&](const nt::OrderPlaced&) {
                                            std::this_thread::sleep_for(200ms);
                                            ++handled;
                                          });
  REQUIRE(sub);
  REQUIRE(catga::test::wait_for([&] { return handled.load() >= 8; }, 30s));  // the handler time is known
  auto cpu = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return std::chrono::seconds(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           std::chrono::microseconds(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
  };
  const auto before = cpu();
  std::this_thread::sleep_for(3s);  // handlers sleep; nothing should run hot
  const auto used = std::chrono::duration_cast<std::chrono::milliseconds>(cpu() - before);
  MESSAGE("CPU used in 3 s of sleeping handlers: " << used.count() << " ms");
  CHECK(used < 500ms);  // spinning: about 1,500 on a busy machine, else 3,000; now about 10
  CHECK(handled.load() < 200);  // still handling: the window measured the waiting
}
