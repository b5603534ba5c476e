// Broker crash: nats-server is SIGKILLed in the middle of a 20,000-event
// publish+consume run and restarted on the same store after a pause.
// Publishers retry with the same message id; consumers resume.
#include <atomic>
#include <thread>

#include "fault_common.hpp"
#include "nats_server.hpp"
#include "wait_for.hpp"

using namespace std::chrono_literals;

TEST_CASE("broker SIGKILLed mid-run of 20,000 events: nothing lost, nothing applied twice") {
  constexpr int kEvents = 20'000;
  catga::test::NatsServer server;
  fault::Ledger ledger;
  // Claims outlive the outage: their owners store the outcome once the broker is back.
  constexpr auto kLease = std::chrono::milliseconds(20'000);
  fault::Member a({server.url()}, "member-a", ledger.effect(), fault::durable_js(), 4, kLease);
  fault::Member b({server.url()}, "member-b", ledger.effect(), fault::durable_js(), 4, kLease);
  auto publisher =
      catga::nats::JetStreamTransport::create(fault::nats_at({server.url()}, "publisher"), fault::durable_js()).value();
  catga::Mediator pub;
  pub.attach(*publisher);

  std::atomic<int> published{0};
  std::atomic<int> retries{0};
  std::atomic<bool> failed{false};
  std::thread producer([&] {
    for (int i = 0; i < kEvents && !failed; ++i) {
      if (!fault::publish_credit(pub, i, &retries)) failed = true;
      published++;
    }
  });

  // Crash while both publishing and consuming are in full swing.
  REQUIRE(catga::test::wait_for([&] { return published.load() >= kEvents / 4 || failed; }, 120s));
  REQUIRE(ledger.distinct() > 0);
  server.kill();
  // The pause: the outage lasts until the publisher has felt it.
  CHECK(catga::test::wait_for([&] { return retries.load() > 0 || published.load() == kEvents; }, 60s));
  server.start();  // same port, same store directory
  producer.join();
  REQUIRE_FALSE(failed.load());

  REQUIRE(catga::test::wait_for([&] { return ledger.distinct() >= kEvents; }, 180s));
  // Let redeliveries of anything still unacknowledged arrive before counting.
  REQUIRE(catga::test::wait_for(
      [&] {
        auto h = a.transport->health();
        return h.consumers.size() == 1 && h.consumers[0].reachable && h.consumers[0].lag() == 0;
      },
      60s));
  MESSAGE("publish retries during the outage: " << retries.load() << ", reconnects: " << a.conn->reconnects());
  CHECK(a.conn->reconnects() >= 1);
  fault::report("broker_crash", ledger.tally(fault::credit_ids(kEvents)));
}
