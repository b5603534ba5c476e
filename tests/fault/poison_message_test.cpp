// Poison message: a handler that always fails for one message → after
// max_deliver attempts it is dead-lettered and the others flow; once the
// handler is fixed, `catga dlq replay <seq>` makes it succeed, exactly once.
#include <atomic>
#include <filesystem>

#include "../nats/stream_reader.hpp"
#include "child_process.hpp"
#include "fault_common.hpp"
#include "nats_server.hpp"
#include "wait_for.hpp"

using namespace std::chrono_literals;

TEST_CASE("a poison message is dead-lettered after max deliveries; replayed with the CLI after the fix it is applied once") {
  constexpr int kEvents = 500;
  const std::string poison = fault::credit_id(137);
  catga::test::NatsServer server;
  fault::Ledger ledger;
  std::atomic<bool> fixed{false};
  std::atomic<int> poison_attempts{0};

  auto conn = catga::nats::Connection::connect(fault::nats_at({server.url()}, "member")).value();
  catga::nats::KvIdempotencyOptions kv;
  kv.bucket = "fault_idem";
  auto store = catga::nats::KvIdempotencyStore::create(conn, kv).value();
  auto transport = catga::nats::JetStreamTransport::create(conn, fault::durable_js()).value();
  catga::Mediator m;
  m.attach(*transport);
  m.use(std::make_shared<catga::IdempotencyBehavior>(catga::nats::exactly_once_idempotency(store)));
  catga::SubscribeOptions opts;
  opts.group = "ledger";
  opts.workers = 4;
  opts.retry.max_deliver = 3;
  opts.retry.backoff = {50ms};
  auto sub = m.subscribe<fault::Credit>(opts, [&](const fault::Credit& c) {
                if (c.id == poison && !fixed) {
                  ++poison_attempts;
                  throw catga::Exception({"ledger_rejected", "credit " + c.id + " breaks a ledger rule", true});
                }
                ledger.apply(c.id);
              }).value();

  for (int i = 0; i < kEvents; ++i) REQUIRE(fault::publish_credit(m, i));
  // The others flow; the poison one ends in the dead letters after 3 attempts.
  REQUIRE(catga::test::wait_for([&] { return ledger.distinct() == kEvents - 1; }, 60s));
  catga::test::RawNats raw(server.url());
  REQUIRE(catga::test::wait_for([&] { return nt::stream_count(raw, "CATGA_DLQ") == 1; }, 60s));
  const auto letters = nt::read_stream(raw, "CATGA_DLQ");
  REQUIRE(letters.size() == 1);
  const auto& letter = letters.front();
  CHECK(letter.header("Catga-Original-Msg-Id") == poison);
  CHECK(letter.header("Catga-Deliveries") == "3");
  CHECK(letter.header("Catga-Error-Code") == "ledger_rejected");
  CHECK(poison_attempts.load() == 3);
  CHECK(ledger.count(poison) == 0);

  fixed = true;  // the handler is fixed; the operator replays the dead letter
  const std::string log = (server.directory() / "cli.log").string();
  {
    catga::test::ChildProcess cli({CATGA_CLI, "--server", server.url(), "dlq", "replay", std::to_string(letter.sequence)}, log);
    const auto status = cli.wait_exit(60s);
    REQUIRE_MESSAGE(status.has_value(), cli.log());
    CHECK_MESSAGE((WIFEXITED(*status) && WEXITSTATUS(*status) == 0), cli.log());
  }
  REQUIRE(catga::test::wait_for([&] { return ledger.count(poison) == 1; }, 60s));
  // Replaying the same sequence again does not apply it a second time.
  {
    catga::test::ChildProcess again({CATGA_CLI, "--server", server.url(), "dlq", "replay", std::to_string(letter.sequence)},
                              log);
    REQUIRE(again.wait_exit(60s).has_value());
  }
  REQUIRE(catga::test::wait_for([&] { return fault::group_drained(server.url()); }, 60s));
  CHECK(ledger.count(poison) == 1);
  {
    std::ifstream in(log);
    std::stringstream cli_output;
    cli_output << in.rdbuf();
    MESSAGE("catga dlq replay: " << cli_output.str());
  }
  fault::report("poison_message", ledger.tally(fault::credit_ids(kEvents)));
  sub.stop();
  (void)transport->stop(5s);
}
