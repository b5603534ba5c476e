// Ordered consumer groups (issue 22) against a real nats-server, with the
// library's default options: per-key order across two event types, members
// that crash, join and leave, several workers in one member, a retry that
// holds back only its own key, and keyed events from outside catga.
#include <signal.h>
#include <time.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include <doctest/doctest.h>

#include "child_process.hpp"
#include "catga/nats/jetstream_transport.hpp"
#include "nats_server.hpp"
#include "order_check.hpp"
#include "ordered_messages.hpp"
#include "raw_nats.hpp"
#include "wait_for.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr std::uint32_t kPartitions = 16;  // JetStreamOptions{}.partitions

std::int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::unique_ptr<catga::nats::JetStreamTransport> transport_at(const catga::test::NatsServer& server,
                                                              const std::string& name) {
  catga::nats::NatsOptions o;
  o.servers = {server.url()};
  o.name = name;
  return catga::nats::JetStreamTransport::create(o, catga::nats::JetStreamOptions{}).value();
}

// Publishes event n of every key, n = 0..events-1 (A for even n, B for odd),
// round by round, `pause` between rounds.
void publish_rounds(catga::nats::JetStreamTransport& t, int keys, int events, std::chrono::milliseconds pause,
                    std::atomic<int>* failures) {
  for (int n = 0; n < events; ++n) {
    for (int k = 0; k < keys; ++k) {
      const std::string key = "k" + std::to_string(k);
      auto done = [failures](const catga::nats::PublishOutcome& o) {
        if (!o.status) ++*failures;
      };
      const auto s = ordered::is_a(n) ? t.publish_async(ordered::KeyedA{key, n}, done)
                                      : t.publish_async(ordered::KeyedB{key, n}, done);
      if (!s) ++*failures;
    }
    if (!t.flush(30s)) ++*failures;
    std::this_thread::sleep_for(pause);
  }
}

// In-process handler that records like ordered_worker does.
struct Recorder {
  std::mutex mu;
  std::vector<ordered::Record> records;
  std::atomic<int> running{0};
  std::atomic<int> most_at_once{0};

  void run(const std::string& key, int n, std::chrono::microseconds work) {
    const int now = ++running;
    int seen = most_at_once.load();
    while (now > seen && !most_at_once.compare_exchange_weak(seen, now)) {
    }
    const auto start = monotonic_ns();
    std::this_thread::sleep_for(work);
    const auto end = monotonic_ns();
    --running;
    std::lock_guard lock(mu);
    records.push_back({key, n, start, end, "solo"});
  }
  std::size_t size() {
    std::lock_guard lock(mu);
    return records.size();
  }
};

}  // namespace

TEST_CASE("3 members, 300 keys x 40 events over 2 types: one SIGKILLed, one added, one leaving; order kept per key") {
  constexpr int kKeys = 300, kEvents = 40;
  catga::test::NatsServer server;
  const fs::path dir = server.directory();
  auto start = [&](const std::string& name, std::vector<std::string> extra) {
    std::vector<std::string> args{ORDERED_WORKER, "--url", server.url(), "--name", name, "--effects",
                                  (dir / (name + ".txt")).string(), "--ready", (dir / (name + ".ready")).string()};
    args.insert(args.end(), extra.begin(), extra.end());
    auto p = std::make_unique<catga::test::ChildProcess>(args, (dir / (name + ".log")).string());
    REQUIRE_MESSAGE(catga::test::wait_for([&] { return fs::exists(dir / (name + ".ready")); }, 60s), p->log());
    return p;
  };
  auto victim = start("w1", {"--stall-after", "1500"});
  auto w2 = start("w2", {});
  auto w3 = start("w3", {});

  auto publisher = transport_at(server, "publisher");
  std::atomic<int> failures{0};
  std::thread producer([&] { publish_rounds(*publisher, kKeys, kEvents, 50ms, &failures); });

  // The victim ran 1,500 events and now holds its partitions mid-handler.
  const bool stalled = catga::test::wait_for([&] { return fs::exists(dir / "w1.txt.stalled"); }, 120s);
  // Its other partitions' handlers that had passed the stall check finish
  // (effect and outcome) and block on their next message meanwhile, so the
  // kill lands before effects, as in fault_consumer_crash.
  std::this_thread::sleep_for(1s);
  victim->kill();
  REQUIRE_MESSAGE(stalled, victim->log());
  auto w4 = start("w4", {});
  // A member leaving gracefully hands its partitions over as well.
  std::this_thread::sleep_for(2s);
  w3->signal(SIGTERM);
  const auto w3_exit = w3->wait_exit(60s);
  producer.join();
  REQUIRE(failures.load() == 0);
  REQUIRE_MESSAGE(w3_exit.has_value(), w3->log());
  CHECK(WIFEXITED(*w3_exit));
  CHECK(WEXITSTATUS(*w3_exit) == 0);

  auto all = [&] {
    std::vector<ordered::Record> r;
    for (const char* n : {"w1", "w2", "w3", "w4"}) {
      auto part = ordered::read_records((dir / (std::string(n) + ".txt")).string());
      r.insert(r.end(), part.begin(), part.end());
    }
    return r;
  };
  ordered::Verdict v;
  const bool complete = catga::test::wait_for(
      [&] {
        v = ordered::check(all(), kKeys, kEvents, kPartitions);
        return v.missing == 0;
      },
      180s);
  // Late redeliveries would show up within a few lease periods.
  std::this_thread::sleep_for(3s);
  v = ordered::check(all(), kKeys, kEvents, kPartitions);
  MESSAGE("ordered 3 members: " << ordered::describe(v));
  CHECK_MESSAGE(complete, w2->log() << w4->log());
  CHECK(v.missing == 0);
  CHECK(v.violations.empty());
  // Exactly-once events ran once. The only repeat allowed is the documented
  // crash window: the victim applied the effect and was killed before its
  // outcome was stored (a handler slowed past the second above by load), at
  // most one per partition it held.
  const std::size_t after_crash = v.repeats_b_first_by.count("w1") ? v.repeats_b_first_by.at("w1") : 0;
  CHECK(v.repeats_b - after_crash == 0);
  CHECK(after_crash <= kPartitions);
  // Everyone took part: the victim before it died, the newcomer after.
  CHECK(ordered::read_records((dir / "w1.txt").string()).size() >= 1500);
  CHECK(ordered::read_records((dir / "w4.txt").string()).size() > 0);
}

TEST_CASE("a member frozen (SIGSTOP) past its lease: the other takes its partitions; resumed, it starts none of them") {
  constexpr int kKeys = 300, kEvents = 20;
  catga::test::NatsServer server;
  const fs::path dir = server.directory();
  auto start = [&](const std::string& name) {
    std::vector<std::string> args{ORDERED_WORKER, "--url", server.url(), "--name", name, "--effects",
                                  (dir / (name + ".txt")).string(), "--ready", (dir / (name + ".ready")).string(),
                                  "--handle-us", "3000"};
    auto p = std::make_unique<catga::test::ChildProcess>(args, (dir / (name + ".log")).string());
    REQUIRE_MESSAGE(catga::test::wait_for([&] { return fs::exists(dir / (name + ".ready")); }, 60s), p->log());
    return p;
  };
  auto w1 = start("w1");
  auto w2 = start("w2");
  auto publisher = transport_at(server, "publisher");
  std::atomic<int> failures{0};
  std::thread producer([&] { publish_rounds(*publisher, kKeys, kEvents, 20ms, &failures); });
  REQUIRE(catga::test::wait_for(
      [&] { return ordered::read_records((dir / "w1.txt").string()).size() >= 300; }, 60s));
  // Handlers take at most 6 ms; a w1 record lasting 5 s ran across the freeze.
  constexpr std::int64_t kFrozenNs = 5'000'000'000;
  const auto paused_at = monotonic_ns();
  w1->signal(SIGSTOP);
  std::this_thread::sleep_for(10s);  // > 1.5 x partition_lease (6 s)
  w1->signal(SIGCONT);
  producer.join();
  REQUIRE(failures.load() == 0);
  auto all = [&] {
    auto r = ordered::read_records((dir / "w1.txt").string());
    auto r2 = ordered::read_records((dir / "w2.txt").string());
    r.insert(r.end(), r2.begin(), r2.end());
    return r;
  };
  ordered::Verdict v;
  const bool complete = catga::test::wait_for(
      [&] {
        v = ordered::check(all(), kKeys, kEvents, kPartitions, "w1", kFrozenNs);
        return v.missing == 0;
      },
      120s);
  std::this_thread::sleep_for(3s);
  v = ordered::check(all(), kKeys, kEvents, kPartitions, "w1", kFrozenNs);
  MESSAGE("ordered SIGSTOP: " << ordered::describe(v));
  CHECK_MESSAGE(complete, w1->log() << w2->log());
  CHECK(v.missing == 0);
  CHECK(v.violations.empty());
  // Few run twice: what w1 was running when frozen (one per partition with
  // one worker) finishes when it resumes, and what it had run but whose ack
  // had not left yet is run again by w2. Everything else w1 had fetched it must
  // not start once resumed (its lease ran out): without that fence it ran
  // about a thousand stale messages again.
  CHECK(v.repeats <= 3 * kPartitions);
  // The other member did take w1's partitions over while w1 was frozen.
  std::set<std::uint32_t> w1_partitions;
  for (const auto& r : ordered::read_records((dir / "w1.txt").string())) {
    if (r.end < paused_at && r.end > paused_at - 1'000'000'000LL) {
      w1_partitions.insert(catga::wire::partition_of(r.key, kPartitions));
    }
  }
  std::size_t taken_over = 0;
  for (const auto& r : ordered::read_records((dir / "w2.txt").string())) {
    if (r.start > paused_at && r.start < paused_at + 10'000'000'000LL &&
        w1_partitions.count(catga::wire::partition_of(r.key, kPartitions)) > 0) {
      ++taken_over;
    }
  }
  MESSAGE("w2 ran " << taken_over << " events of w1's " << w1_partitions.size() << " partitions while w1 was frozen");
  CHECK(taken_over > 0);
}

TEST_CASE("handlers longer than the lease while partitions move to a new member: never on two members at once") {
  constexpr int kKeys = 32;
  catga::test::NatsServer server;
  const fs::path dir = server.directory();
  auto start = [&](const std::string& name, std::vector<std::string> extra) {
    std::vector<std::string> args{ORDERED_WORKER, "--url", server.url(), "--name", name, "--effects",
                                  (dir / (name + ".txt")).string(), "--ready", (dir / (name + ".ready")).string()};
    args.insert(args.end(), extra.begin(), extra.end());
    auto p = std::make_unique<catga::test::ChildProcess>(args, (dir / (name + ".log")).string());
    REQUIRE_MESSAGE(catga::test::wait_for([&] { return fs::exists(dir / (name + ".ready")); }, 60s), p->log());
    return p;
  };
  // 8 s per event, longer than partition_lease (6 s): w1 is mid-handler in
  // every partition when w2 joins and half of them move.
  auto w1 = start("w1", {"--handle-ms-fixed", "8000"});
  auto publisher = transport_at(server, "publisher");
  std::atomic<int> failures{0};
  publish_rounds(*publisher, kKeys, 1, 0ms, &failures);
  REQUIRE(failures.load() == 0);
  std::this_thread::sleep_for(1s);
  auto w2 = start("w2", {});
  auto all = [&] {
    auto r = ordered::read_records((dir / "w1.txt").string());
    auto r2 = ordered::read_records((dir / "w2.txt").string());
    r.insert(r.end(), r2.begin(), r2.end());
    return r;
  };
  ordered::Verdict v;
  const bool complete = catga::test::wait_for(
      [&] {
        v = ordered::check(all(), kKeys, 1, kPartitions);
        return v.missing == 0;
      },
      120s);
  std::this_thread::sleep_for(2s);
  v = ordered::check(all(), kKeys, 1, kPartitions);
  MESSAGE("ordered slow handlers: " << ordered::describe(v) << "; w2 ran "
                                    << ordered::read_records((dir / "w2.txt").string()).size());
  CHECK_MESSAGE(complete, w1->log() << w2->log());
  CHECK(v.violations.empty());
  CHECK(v.repeats == 0);  // each ran once: w1 finished before handing over
  CHECK(ordered::read_records((dir / "w2.txt").string()).size() > 0);
}

TEST_CASE("one member with 8 workers: keys run in parallel, each key in order and one at a time") {
  constexpr int kKeys = 300, kEvents = 40;
  catga::test::NatsServer server;
  auto publisher = transport_at(server, "publisher");
  auto consumer = transport_at(server, "consumer");
  catga::Mediator m;
  m.attach(*consumer);
  Recorder rec;
  auto sub = m.subscribe_ordered<ordered::KeyedA, ordered::KeyedB>(
                  {.group = "solo", .workers = 8},
                  [&](const ordered::KeyedA& e) { rec.run(e.key, e.n, 300us); },
                  [&](const ordered::KeyedB& e) { rec.run(e.key, e.n, 300us); })
                 .value();
  std::atomic<int> failures{0};
  publish_rounds(*publisher, kKeys, kEvents, 0ms, &failures);
  REQUIRE(failures.load() == 0);
  REQUIRE(catga::test::wait_for([&] { return rec.size() >= kKeys * kEvents; }, 120s));
  sub.stop();
  const auto v = ordered::check(rec.records, kKeys, kEvents, kPartitions);
  MESSAGE("ordered 1 member x 8 workers: " << ordered::describe(v) << " most_at_once=" << rec.most_at_once.load());
  CHECK(v.missing == 0);
  CHECK(v.repeats == 0);
  CHECK(v.violations.empty());
  // Different keys did run at the same time: more than one per partition too
  // (16 partitions, 8 workers each).
  CHECK(rec.most_at_once.load() > static_cast<int>(kPartitions));
}

TEST_CASE("a retried event holds back only its own key: other keys of its partition pass it") {
  catga::test::NatsServer server;
  auto publisher = transport_at(server, "publisher");
  auto consumer = transport_at(server, "consumer");
  // Two keys in the same partition.
  const std::string slow_key = "k0";
  std::string other_key;
  for (int i = 1; other_key.empty(); ++i) {
    const std::string k = "k" + std::to_string(i);
    if (catga::wire::partition_of(k, kPartitions) == catga::wire::partition_of(slow_key, kPartitions)) other_key = k;
  }
  catga::Mediator m;
  m.attach(*consumer);
  std::mutex mu;
  std::vector<std::string> order;  // "<key>#<n>" as handled
  std::atomic<int> failures_left{3};
  catga::SubscribeOptions opts{.group = "retry", .workers = 4};
  opts.retry.backoff = {300ms};
  auto sub = m.subscribe_ordered<ordered::KeyedA, ordered::KeyedB>(
                  opts,
                  [&](const ordered::KeyedA& e) -> catga::Status {
                    if (e.key == slow_key && e.n == 0 && failures_left.fetch_sub(1) > 0) {
                      return catga::Error{"busy", "try again", true};
                    }
                    std::lock_guard lock(mu);
                    order.push_back(e.key + "#" + std::to_string(e.n));
                    return {};
                  },
                  [&](const ordered::KeyedB& e) {
                    std::lock_guard lock(mu);
                    order.push_back(e.key + "#" + std::to_string(e.n));
                  })
                 .value();
  for (int n = 0; n < 4; ++n) {
    for (const auto& key : {slow_key, other_key}) {
      catga::Status s = ordered::is_a(n) ? m.publish(ordered::KeyedA{key, n}) : m.publish(ordered::KeyedB{key, n});
      REQUIRE(s);
    }
  }
  REQUIRE(catga::test::wait_for([&] {
    std::lock_guard lock(mu);
    return order.size() >= 8;
  }, 30s));
  sub.stop();
  std::string text;
  for (const auto& x : order) text += x + " ";
  MESSAGE("handled: " << text);
  auto pos = [&](const std::string& x) { return std::find(order.begin(), order.end(), x) - order.begin(); };
  // The other key ran all four while k0#0 was being retried (3 x 300 ms)...
  CHECK(pos(other_key + "#3") < pos(slow_key + "#0"));
  // ...and k0's later events waited for it.
  CHECK(pos(slow_key + "#0") < pos(slow_key + "#1"));
  CHECK(pos(slow_key + "#1") < pos(slow_key + "#2"));
  CHECK(pos(slow_key + "#2") < pos(slow_key + "#3"));
  CHECK(order.size() == 8);
}

TEST_CASE("keyed events: unordered groups still get them; a foreign client publishes one by subject and header") {
  catga::test::NatsServer server;
  auto t = transport_at(server, "both");
  catga::Mediator m;
  m.attach(*t);
  std::mutex mu;
  std::vector<std::string> unordered_seen, ordered_seen;
  auto plain = m.subscribe<ordered::KeyedA>({.group = "plain"}, [&](const ordered::KeyedA& e, catga::Context& ctx) {
                  std::lock_guard lock(mu);
                  unordered_seen.push_back(e.key + "#" + std::to_string(e.n) + "@" +
                                           std::string(ctx.headers.get(catga::wire::kOrderingKey).value_or("-")));
                }).value();
  auto ordered_sub = m.subscribe_ordered<ordered::KeyedA>({.group = "ord"}, [&](const ordered::KeyedA& e) {
                        std::lock_guard lock(mu);
                        ordered_seen.push_back(e.key + "#" + std::to_string(e.n));
                      }).value();
  // All types of a group in one call: a second ordered subscription of the group is refused.
  auto second = m.subscribe_ordered<ordered::KeyedB>({.group = "ord"}, [](const ordered::KeyedB&) {});
  REQUIRE_FALSE(second);
  CHECK(second.error().code == catga::errc::validation);
  REQUIRE(m.publish(ordered::KeyedA{"A-1", 0}));
  // The publisher overrides the key of one message.
  auto ctx = catga::Context::root();
  ctx.headers.set(catga::wire::kOrderingKey, "customer-7");
  REQUIRE(m.publish(ordered::KeyedA{"A-1", 1}, ctx));
  catga::test::RawNats raw(server.url());
  // A keyed type this ordered group does not consume shares its partition:
  // it is passed over, never dead-lettered under the group, even when it is
  // too large to read (before: "ord" dead-lettered it as too_large).
  {
    const std::string subject = "catga.evt.KeyedB." + std::to_string(catga::wire::partition_of("A-1", kPartitions));
    const std::string body(600 * 1024, 'x');  // over ConsumerOptions::max_body_bytes (512 KiB)
    natsMsg* msg = nullptr;
    REQUIRE(natsMsg_Create(&msg, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size())) == NATS_OK);
    natsMsgHeader_Set(msg, "Nats-Msg-Id", "01J00000000000000000000LARGE");
    natsMsgHeader_Set(msg, "Catga-Type", "KeyedB");
    natsMsgHeader_Set(msg, "Catga-Ordering-Key", "A-1");
    jsPubAck* ack = nullptr;
    jsErrCode jerr{};
    REQUIRE(js_PublishMsg(&ack, raw.js(), msg, nullptr, &jerr) == NATS_OK);
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(msg);
  }
  // Another language: subject <prefix>.evt.<Type>.<partition> and the key header.
  {
    const std::string key = "A-1";
    const std::string subject = "catga.evt.KeyedA." + std::to_string(catga::wire::partition_of(key, kPartitions));
    natsMsg* msg = nullptr;
    const std::string body = R"({"key":"A-1","n":2})";
    REQUIRE(natsMsg_Create(&msg, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size())) == NATS_OK);
    natsMsgHeader_Set(msg, "Nats-Msg-Id", "01J0000000000000000000FOREIGN");
    natsMsgHeader_Set(msg, "Catga-Type", "KeyedA");
    natsMsgHeader_Set(msg, "Catga-Ordering-Key", key.c_str());
    jsPubAck* ack = nullptr;
    jsErrCode jerr{};
    REQUIRE(js_PublishMsg(&ack, raw.js(), msg, nullptr, &jerr) == NATS_OK);
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(msg);
  }
  REQUIRE(catga::test::wait_for([&] {
    std::lock_guard lock(mu);
    return unordered_seen.size() >= 3 && ordered_seen.size() >= 3;
  }, 30s));
  // A-1#2 came after the large KeyedB in the partition, and its key: that
  // one is settled by now.
  {
    jsStreamInfo* info = nullptr;
    jsErrCode jerr{};
    REQUIRE(js_GetStreamInfo(&info, raw.js(), "CATGA_DLQ", nullptr, &jerr) == NATS_OK);
    CHECK(info->State.Msgs == 0);
    jsStreamInfo_Destroy(info);
  }
  std::lock_guard lock(mu);
  CHECK(unordered_seen[0] == "A-1#0@A-1");
  CHECK(unordered_seen[1] == "A-1#1@customer-7");
  CHECK(unordered_seen[2] == "A-1#2@A-1");
  // #1 went to customer-7's partition: ordered only against its own key.
  REQUIRE(ordered_seen.size() == 3);
  auto at = [&](const std::string& x) { return std::find(ordered_seen.begin(), ordered_seen.end(), x) - ordered_seen.begin(); };
  CHECK(at("A-1#1") < 3);
  CHECK(at("A-1#0") < at("A-1#2"));
  // The subjects carry the partition.
  CHECK(catga::wire::event_subject("catga", "KeyedA", 3) == "catga.evt.KeyedA.3");
  CHECK(catga::wire::partition_filter("catga", 3) == "catga.evt.*.3");
}
