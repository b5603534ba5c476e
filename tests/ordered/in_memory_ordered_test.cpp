// Ordered groups on the in-memory transport (issue 22): the promise of
// docs/transports.md, "Ordered groups", without a server: a key's events run
// one at a time in publish order across the subscription's types, other keys
// in parallel; a retried event holds back only its own key; a dead-lettered
// one lets its key go on.
#include <time.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include <doctest/doctest.h>

#include "catga/transport/in_memory.hpp"
#include "order_check.hpp"
#include "ordered_messages.hpp"

using namespace std::chrono_literals;

namespace {

std::int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

catga::SubscribeOptions ordered_opts(std::string group, std::size_t workers, catga::RetryPolicy retry = {}) {
  catga::SubscribeOptions o;
  o.group = std::move(group);
  o.workers = workers;
  o.retry = std::move(retry);
  return o;
}

// Records each handler call with its member, and how many ran at once.
struct Recorder {
  std::mutex mu;
  std::vector<ordered::Record> records;
  std::atomic<int> running{0};
  std::atomic<int> most_at_once{0};

  void run(const std::string& member, const std::string& key, int n, std::chrono::microseconds work) {
    const int now = ++running;
    int seen = most_at_once.load();
    while (now > seen && !most_at_once.compare_exchange_weak(seen, now)) {
    }
    const auto start = monotonic_ns();
    std::this_thread::sleep_for(work);
    const auto end = monotonic_ns();
    --running;
    std::lock_guard lock(mu);
    records.push_back({key, n, start, end, member});
  }
  std::vector<std::string> order() {
    std::lock_guard lock(mu);
    std::vector<std::string> out;
    for (const auto& r : records) out.push_back(r.key + "#" + std::to_string(r.n));
    return out;
  }
};

catga::Result<catga::Subscription> subscribe(catga::Mediator& m, Recorder& rec, const std::string& member,
                                             catga::SubscribeOptions options, std::chrono::microseconds work) {
  return m.subscribe_ordered<ordered::KeyedA, ordered::KeyedB>(
      std::move(options), [&rec, member, work](const ordered::KeyedA& e) { rec.run(member, e.key, e.n, work); },
      [&rec, member, work](const ordered::KeyedB& e) { rec.run(member, e.key, e.n, work); });
}

// Publishes events from..to-1 of every key, round by round.
void publish_rounds(catga::Mediator& m, int keys, int from, int to) {
  for (int n = from; n < to; ++n) {
    for (int k = 0; k < keys; ++k) {
      const std::string key = "k" + std::to_string(k);
      const auto s = ordered::is_a(n) ? m.publish(ordered::KeyedA{key, n}) : m.publish(ordered::KeyedB{key, n});
      REQUIRE(s);
    }
  }
}

std::ptrdiff_t pos(const std::vector<std::string>& order, const std::string& x) {
  return std::find(order.begin(), order.end(), x) - order.begin();
}

}  // namespace

TEST_CASE("in memory, one member with 8 workers: keys run in parallel, each key in order and one at a time") {
  // Few keys, many events each: a key's next event is only a few places
  // behind in the queue, so free workers would take it at once if order
  // were not kept.
  constexpr int kKeys = 6, kEvents = 300;
  catga::InMemoryTransport t;
  catga::Mediator m;
  m.attach(t);
  Recorder rec;
  auto sub = subscribe(m, rec, "solo", ordered_opts("solo", 8), 200us).value();
  publish_rounds(m, kKeys, 0, kEvents);
  REQUIRE(t.wait_idle(60s));
  sub.stop();
  const auto v = ordered::check(rec.records, kKeys, kEvents, 0);
  MESSAGE(ordered::describe(v) << " most_at_once=" << rec.most_at_once.load());
  CHECK(v.missing == 0);
  CHECK(v.repeats == 0);
  CHECK(v.violations.empty());
  CHECK(rec.most_at_once.load() > 1);
}

TEST_CASE("in memory, two members, one stopped mid-run and another added: every key in order, nothing lost") {
  constexpr int kKeys = 4, kEvents = 200;
  catga::InMemoryTransport t;
  catga::Mediator m;
  m.attach(t);
  Recorder rec;
  auto a = subscribe(m, rec, "a", ordered_opts("g", 3), 100us).value();
  auto b = subscribe(m, rec, "b", ordered_opts("g", 3), 100us).value();
  publish_rounds(m, kKeys, 0, kEvents / 2);
  a.stop();  // what it was handed but had not started goes back, in order
  auto c = subscribe(m, rec, "c", ordered_opts("g", 2), 100us).value();
  publish_rounds(m, kKeys, kEvents / 2, kEvents);
  REQUIRE(t.wait_idle(60s));
  b.stop();
  c.stop();
  const auto v = ordered::check(rec.records, kKeys, kEvents, 0);
  MESSAGE(ordered::describe(v));
  CHECK(v.missing == 0);
  CHECK(v.repeats == 0);
  CHECK(v.violations.empty());
  const auto stats = t.group_stats("KeyedA", "g");
  REQUIRE(stats);
  CHECK(stats->acked == static_cast<std::uint64_t>(kKeys * kEvents));
  CHECK(stats->members == 0);
}

TEST_CASE("in memory, a retried event holds back only its own key") {
  catga::InMemoryTransport t;
  catga::Mediator m;
  m.attach(t);
  std::mutex mu;
  std::vector<std::string> order;
  std::atomic<int> other_done{0};
  int k0_tries = 0;  // k0#0 fails at least once, so it is retried in any case
  catga::RetryPolicy retry;
  retry.max_deliver = 2000;  // long enough for the other key, however slow the machine
  retry.backoff = {5ms};
  // k0#0 fails until the other key's four events are handled: were the
  // whole group held back by it, they never would be, and k0#0 would end in
  // the dead letters.
  auto sub = m.subscribe_ordered<ordered::KeyedA, ordered::KeyedB>(
                  ordered_opts("retry", 4, retry),
                  [&](const ordered::KeyedA& e) -> catga::Status {
                    if (e.key == "k0" && e.n == 0 && (other_done.load() < 4 || k0_tries++ == 0)) {
                      return catga::Error{"busy", "try again", true};
                    }
                    std::lock_guard lock(mu);
                    order.push_back(e.key + "#" + std::to_string(e.n));
                    if (e.key != "k0") ++other_done;
                    return {};
                  },
                  [&](const ordered::KeyedB& e) {
                    std::lock_guard lock(mu);
                    order.push_back(e.key + "#" + std::to_string(e.n));
                    if (e.key != "k0") ++other_done;
                  })
                 .value();
  for (int n = 0; n < 4; ++n) {
    for (const std::string key : {"k0", "k1"}) {
      REQUIRE((ordered::is_a(n) ? m.publish(ordered::KeyedA{key, n}) : m.publish(ordered::KeyedB{key, n})));
    }
  }
  REQUIRE(t.wait_idle(60s));
  sub.stop();
  std::string text;
  for (const auto& x : order) text += x + " ";
  MESSAGE("handled: " << text);
  REQUIRE(order.size() == 8);
  CHECK(t.dead_letters().empty());
  CHECK(pos(order, "k1#3") < pos(order, "k0#0"));
  CHECK(pos(order, "k0#0") < pos(order, "k0#1"));
  CHECK(pos(order, "k0#1") < pos(order, "k0#2"));
  CHECK(pos(order, "k0#2") < pos(order, "k0#3"));
  CHECK(t.group_stats("KeyedB", "retry")->redelivered > 0);
}

TEST_CASE("in memory, a dead-lettered event lets its key go on, and is filed under its own type") {
  catga::InMemoryTransport t;
  catga::Mediator m;
  m.attach(t);
  std::mutex mu;
  std::vector<std::string> order;
  auto sub = m.subscribe_ordered<ordered::KeyedA, ordered::KeyedB>(
                  ordered_opts("dlq", 2),
                  [&](const ordered::KeyedA& e) {
                    std::lock_guard lock(mu);
                    order.push_back(e.key + "#" + std::to_string(e.n));
                  },
                  [&](const ordered::KeyedB& e) -> catga::Status {
                    if (e.key == "k0" && e.n == 1) return catga::make_error(catga::errc::validation, "refused");
                    std::lock_guard lock(mu);
                    order.push_back(e.key + "#" + std::to_string(e.n));
                    return {};
                  })
                 .value();
  for (int n = 0; n < 4; ++n) {
    REQUIRE((ordered::is_a(n) ? m.publish(ordered::KeyedA{"k0", n}) : m.publish(ordered::KeyedB{"k0", n})));
  }
  REQUIRE(t.wait_idle(30s));
  CHECK(order == std::vector<std::string>{"k0#0", "k0#2", "k0#3"});
  const auto dead = t.dead_letters();
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].type == "KeyedB");
  CHECK(dead[0].group == "dlq");
  CHECK(dead[0].message.subject == "catga.dlq.KeyedB");
  // Replayed, it reaches the ordered group again.
  REQUIRE(t.replay_dead_letter(dead[0].sequence));
  CHECK(t.wait_idle(30s));
  CHECK(t.dead_letters().size() == 1);  // refused again: its handler still says no
  sub.stop();
}

TEST_CASE("in memory, members of one ordered group must consume the same types; plain groups still get keyed events") {
  catga::InMemoryTransport t;
  catga::Mediator m;
  m.attach(t);
  Recorder rec;
  auto first = subscribe(m, rec, "a", ordered_opts("g", 1), 0us).value();
  auto other = m.subscribe_ordered<ordered::KeyedA>(ordered_opts("g", 1), [](const ordered::KeyedA&) {});
  REQUIRE_FALSE(other);
  CHECK(other.error().code == catga::errc::validation);
  auto same = subscribe(m, rec, "b", ordered_opts("g", 1), 0us);
  CHECK(same);
  std::atomic<int> plain{0};
  auto unordered = m.subscribe<ordered::KeyedA>(ordered_opts("plain", 1), [&](const ordered::KeyedA&) { ++plain; });
  REQUIRE(unordered);
  REQUIRE(m.publish(ordered::KeyedA{"k1", 0}));
  REQUIRE(t.wait_idle(30s));
  CHECK(plain.load() == 1);
  CHECK(rec.order() == std::vector<std::string>{"k1#0"});
}
