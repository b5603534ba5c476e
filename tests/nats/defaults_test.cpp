// Delivery promises under the library's DEFAULT options (JetStreamOptions{},
// SubscribeOptions{} with only a group): what users run. Nothing here tunes
// ack_wait, batch, leases or waits.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "nats_server.hpp"
#include "test_messages.hpp"
#include "wait_for.hpp"

namespace {

using namespace std::chrono_literals;

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
