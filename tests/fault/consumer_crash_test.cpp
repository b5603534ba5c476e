// Consumer crash: three consumer processes in one group; one is SIGKILLed
// while it holds a batch of fetched, claimed, unacknowledged messages. The
// other two get them (ack wait), take over the orphaned claims (lease) and
// apply each once.
#include <atomic>
#include <filesystem>
#include <thread>

#include "child_process.hpp"
#include "fault_common.hpp"
#include "nats_server.hpp"
#include "wait_for.hpp"

namespace fs = std::filesystem;

using namespace std::chrono_literals;

TEST_CASE("one of three consumer processes SIGKILLed mid-batch: its messages go to the others, each applied once") {
  constexpr int kEvents = 3'000;
  catga::test::NatsServer server;
  const fs::path dir = server.directory();
  auto publisher =
      catga::nats::JetStreamTransport::create(fault::nats_at({server.url()}, "publisher"), fault::durable_js()).value();
  catga::Mediator pub;
  pub.attach(*publisher);

  auto start = [&](const std::string& name, long stall_after) {
    const std::string effects = (dir / (name + ".txt")).string();
    auto p = std::make_unique<fault::ChildProcess>(
        std::vector<std::string>{FAULT_WORKER, "--url", server.url(), "--name", name, "--effects", effects, "--ready",
                                 (dir / (name + ".ready")).string(), "--workers", "4", "--stall-after",
                                 std::to_string(stall_after)},
        (dir / (name + ".log")).string());
    REQUIRE_MESSAGE(catga::test::wait_for([&] { return fs::exists(dir / (name + ".ready")); }, 60s), p->log());
    return p;
  };
  auto victim = start("victim", 200);
  auto w2 = start("w2", -1);
  auto w3 = start("w3", -1);

  std::atomic<bool> failed{false};
  std::thread producer([&] {
    for (int i = 0; i < kEvents && !failed; ++i) failed = !fault::publish_credit(pub, i);
  });
  // The victim has applied 200 and now holds the rest of its batch.
  const bool stalled = catga::test::wait_for([&] { return fs::exists(dir / "victim.txt.stalled"); }, 120s);
  victim->kill();
  producer.join();
  REQUIRE_MESSAGE(stalled, victim->log());
  REQUIRE_FALSE(failed.load());

  fault::Ledger ledger;
  const std::vector<std::string> files{(dir / "victim.txt").string(), (dir / "w2.txt").string(),
                                       (dir / "w3.txt").string()};
  auto applied = [&] {
    std::size_t n = 0;
    for (const auto& f : files) n += fault::count_lines(f);
    return n;
  };
  REQUIRE_MESSAGE(catga::test::wait_for([&] { return applied() >= kEvents; }, 120s), w2->log());
  // Nothing left to redeliver: a duplicate would have been applied by now.
  REQUIRE(catga::test::wait_for([&] { return fault::group_drained(server.url()); }, 60s));
  for (const auto& f : files) ledger.add_file(f);
  CHECK(fault::count_lines(files[0]) >= 200);  // 4 handler threads may pass the mark together
  CHECK(fault::count_lines(files[0]) <= 204);
  CHECK(fault::count_lines(files[1]) > 0);
  CHECK(fault::count_lines(files[2]) > 0);
  fault::report("consumer_crash", ledger.tally(fault::credit_ids(kEvents)));
}
