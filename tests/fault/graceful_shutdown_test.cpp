// Graceful shutdown under load: a consumer process gets SIGTERM while its
// handlers are busy and more is fetched; it finishes or naks what it holds
// and exits within its stop timeout; nothing is lost or applied twice.
#include <filesystem>
#include <thread>

#include "child_process.hpp"
#include "fault_common.hpp"
#include "nats_server.hpp"
#include "wait_for.hpp"

namespace fs = std::filesystem;

using namespace std::chrono_literals;

TEST_CASE("SIGTERM to a consumer process with work in flight: it exits in time, nothing lost or applied twice") {
  constexpr int kEvents = 2'000;
  catga::test::NatsServer server;
  const fs::path dir = server.directory();
  auto publisher =
      catga::nats::JetStreamTransport::create(fault::nats_at({server.url()}, "publisher"), fault::durable_js()).value();
  catga::Mediator pub;
  pub.attach(*publisher);
  for (int i = 0; i < kEvents; ++i) REQUIRE(fault::publish_credit(pub, i));

  auto start = [&](const std::string& name) {
    // 20 ms per message and 4 handler threads: the up to 2 x 128 fetched
    // ahead take about as long as the 1 s stop timeout, so stop() finishes
    // some and hands the rest back (nak).
    auto p = std::make_unique<catga::test::ChildProcess>(
        std::vector<std::string>{FAULT_WORKER, "--url", server.url(), "--name", name, "--effects",
                                 (dir / (name + ".txt")).string(), "--ready", (dir / (name + ".ready")).string(),
                                 "--workers", "4", "--handle-ms", "20", "--stop-timeout-ms", "1000"},
        (dir / (name + ".log")).string());
    REQUIRE_MESSAGE(catga::test::wait_for([&] { return fs::exists(dir / (name + ".ready")); }, 60s), p->log());
    return p;
  };
  auto leaving = start("leaving");
  auto staying = start("staying");
  const std::string leaving_file = (dir / "leaving.txt").string(), staying_file = (dir / "staying.txt").string();

  REQUIRE(catga::test::wait_for([&] { return fault::count_lines(leaving_file) >= 100; }, 60s));
  leaving->signal(SIGTERM);
  // Its own stop timeout is 1 s; handlers already running are awaited; 30 s is plenty.
  const auto status = leaving->wait_exit(30s);
  REQUIRE_MESSAGE(status.has_value(), leaving->log());
  CHECK_MESSAGE(WIFEXITED(*status), leaving->log());
  CHECK_MESSAGE(WEXITSTATUS(*status) == 0, leaving->log());
  const auto left_with = fault::count_lines(leaving_file);
  CHECK(left_with < static_cast<std::size_t>(kEvents));

  REQUIRE_MESSAGE(catga::test::wait_for(
                      [&] { return fault::count_lines(leaving_file) + fault::count_lines(staying_file) >= kEvents; },
                      120s),
                  staying->log());
  REQUIRE(catga::test::wait_for([&] { return fault::group_drained(server.url()); }, 60s));
  fault::Ledger ledger;
  ledger.add_file(leaving_file);
  ledger.add_file(staying_file);
  MESSAGE(leaving->log());
  fault::report("graceful_shutdown", ledger.tally(fault::credit_ids(kEvents)));
}
