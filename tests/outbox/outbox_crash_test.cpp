// The outbox across a process crash: with the broker down a process stores
// 1,000 events locally and is SIGKILLed; a new process with the broker up
// relays them: all 1,000 reach the stream once, in order.
#include <doctest/doctest.h>

#include <iostream>
#include <set>

#include "child_process.hpp"
#include "../nats/stream_reader.hpp"
#include "nats_server.hpp"
#include "outbox_messages.hpp"
#include "raw_nats.hpp"
#include "wait_for.hpp"

using namespace std::chrono_literals;

TEST_CASE("broker down, 1,000 events stored, process SIGKILLed; restarted with the broker: each delivered once") {
  constexpr int kEvents = 1'000;
  catga::test::NatsServerOptions so;
  so.start = false;  // down: only its port is known
  catga::test::NatsServer server(so);
  const std::string db = (server.directory() / "outbox.db").string();
  const std::string log = (server.directory() / "publisher.log").string();
  {
    catga::test::ChildProcess publisher({OUTBOX_PUBLISHER, "--db", db, "--url", server.url(), "--mode", "publish", "--count",
                                   std::to_string(kEvents)},
                                  log);
    REQUIRE_MESSAGE(catga::test::wait_for([&] { return publisher.log().find("published ") != std::string::npos; }, 120s),
                    publisher.log());
    CHECK_MESSAGE(publisher.log().find("published 1000: stored_locally=1000 pending=1000") != std::string::npos,
                  publisher.log());
    publisher.kill();  // SIGKILL: no destructor, no flush
  }
  server.start();
  catga::test::ChildProcess relay({OUTBOX_PUBLISHER, "--db", db, "--url", server.url(), "--mode", "relay"}, log);
  const auto status = relay.wait_exit(180s);
  REQUIRE_MESSAGE(status.has_value(), relay.log());
  CHECK_MESSAGE(WIFEXITED(*status), relay.log());
  CHECK_MESSAGE(WEXITSTATUS(*status) == 0, relay.log());
  CHECK(relay.log().find("drained 1000") != std::string::npos);

  catga::test::RawNats raw(server.url());
  const auto stored = nt::read_stream(raw, "CATGA_EVENTS");
  std::set<std::string> ids;
  int in_order = 0;
  for (const auto& m : stored) {
    ids.insert(m.header("Nats-Msg-Id"));
    if (m.header("Nats-Msg-Id") == ob::deposit_id(in_order)) ++in_order;
  }
  const std::uint64_t delivered = ids.size();
  const std::uint64_t duplicates = stored.size() - ids.size();
  std::cout << "fault outbox_crash: sent=" << kEvents << " delivered=" << delivered << " lost=" << kEvents - delivered
            << " duplicates_applied=" << duplicates << std::endl;
  CHECK(stored.size() == static_cast<std::size_t>(kEvents));
  CHECK(delivered == static_cast<std::uint64_t>(kEvents));
  CHECK(duplicates == 0);
  CHECK(in_order == kEvents);  // stream order = publish order
}
