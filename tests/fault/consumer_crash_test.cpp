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

namespace {

// Starts fault_worker `name` (effects in <dir>/<name>.txt) with `extra`
// arguments and waits until it consumes.
std::unique_ptr<catga::test::ChildProcess> start_worker(const catga::test::NatsServer& server, const std::string& name,
                                                  std::vector<std::string> extra) {
  const fs::path dir = server.directory();
  std::vector<std::string> args{FAULT_WORKER, "--url", server.url(), "--name", name, "--effects",
                                (dir / (name + ".txt")).string(), "--ready", (dir / (name + ".ready")).string()};
  args.insert(args.end(), extra.begin(), extra.end());
  auto p = std::make_unique<catga::test::ChildProcess>(args, (dir / (name + ".log")).string());
  REQUIRE_MESSAGE(catga::test::wait_for([&] { return fs::exists(dir / (name + ".ready")); }, 60s), p->log());
  return p;
}

}  // namespace

TEST_CASE("one of three consumer processes SIGKILLed mid-batch: its messages go to the others, each applied once") {
  constexpr int kEvents = 3'000;
  catga::test::NatsServer server;
  const fs::path dir = server.directory();
  auto publisher =
      catga::nats::JetStreamTransport::create(fault::nats_at({server.url()}, "publisher"), fault::durable_js()).value();
  catga::Mediator pub;
  pub.attach(*publisher);

  auto start = [&](const std::string& name, long stall_after) {
    return start_worker(server, name, {"--workers", "4", "--stall-after", std::to_string(stall_after)});
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

// With the library's defaults (ack wait 30 s, lease 5 min, wait 30 s,
// max_deliver 5). Before the fix the claimed message of the killed process
// kept finding the dead owner's live claim: each redelivery waited 30 s,
// failed with a retryable conflict and used up a delivery, and after about
// 2.6 min it was dead-lettered although its handler never failed. Now the
// wait ends `deferred` with the owner's remaining lease: it is redelivered
// when the lease has run out, the claim is taken over and applied once.
TEST_CASE("defaults: a consumer SIGKILLed mid-handler: its exactly-once message is applied by another, not dead-lettered") {
  constexpr int kEvents = 20;
  catga::test::NatsServer server;
  const fs::path dir = server.directory();
  catga::nats::NatsOptions po;
  po.servers = {server.url()};
  po.name = "publisher";
  auto publisher = catga::nats::JetStreamTransport::create(po, catga::nats::JetStreamOptions{}).value();
  catga::Mediator pub;
  pub.attach(*publisher);

  auto start = [&](const std::string& name, long stall_after) {
    return start_worker(server, name, {"--stall-after", std::to_string(stall_after), "--defaults", "1"});
  };
  // The victim claims the first credit and stalls in its handler, holding
  // the rest fetched; it dies there.
  auto victim = start("victim", 0);
  for (int i = 0; i < kEvents; ++i) REQUIRE(fault::publish_credit(pub, i));
  REQUIRE_MESSAGE(catga::test::wait_for([&] { return fs::exists(dir / "victim.txt.stalled"); }, 60s), victim->log());
  victim->kill();
  const auto killed = std::chrono::steady_clock::now();
  auto survivor = start("survivor", -1);

  const std::vector<std::string> files{(dir / "victim.txt").string(), (dir / "survivor.txt").string()};
  auto applied = [&] {
    std::size_t n = 0;
    for (const auto& f : files) n += fault::count_lines(f);
    return n;
  };
  // Bounded: ack wait + lease + the takeover margin, and some slack.
  const bool all = catga::test::wait_for([&] { return applied() >= kEvents; }, 7min);
  const auto took = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - killed);
  MESSAGE("the stalled credit was applied " << took.count() << " s after the kill");
  CHECK_MESSAGE(all, survivor->log());
  REQUIRE(catga::test::wait_for([&] { return fault::group_drained(server.url()); }, 60s));

  catga::test::RawNats raw(server.url());
  jsStreamInfo* si = nullptr;
  jsErrCode jerr{};
  REQUIRE(js_GetStreamInfo(&si, raw.js(), "CATGA_DLQ", nullptr, &jerr) == NATS_OK);
  const auto dead_letters = si->State.Msgs;
  jsStreamInfo_Destroy(si);
  CHECK(dead_letters == 0);

  fault::Ledger ledger;
  for (const auto& f : files) ledger.add_file(f);
  CHECK(fault::count_lines(files[0]) == 0);  // the victim never finished one
  fault::report("consumer_crash_defaults", ledger.tally(fault::credit_ids(kEvents)));
}
