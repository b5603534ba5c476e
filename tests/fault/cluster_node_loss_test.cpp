// Cluster node loss: a 3-node cluster with R3 streams; the events stream's
// leader is SIGKILLed mid-run; publishing and consuming continue after the
// election.
#include <atomic>
#include <thread>

#include "fault_common.hpp"
#include "nats_cluster.hpp"
#include "wait_for.hpp"

using namespace std::chrono_literals;

TEST_CASE("the R3 events stream's leader SIGKILLed mid-run: nothing lost, nothing applied twice") {
  constexpr int kEvents = 5'000;
  catga::test::NatsCluster cluster;
  const auto js = fault::durable_js(3);
  fault::Ledger ledger;
  // Claims outlive the outage: their owners store the outcome once the broker is back.
  constexpr auto kLease = std::chrono::milliseconds(20'000);
  fault::Member a(cluster.urls(), "member-a", ledger.effect(), js, 4, kLease);
  fault::Member b(cluster.urls(), "member-b", ledger.effect(), js, 4, kLease);
  auto publisher =
      catga::nats::JetStreamTransport::create(fault::nats_at(cluster.urls(), "publisher"), js).value();
  catga::Mediator pub;
  pub.attach(*publisher);
  const auto leader = cluster.wait_for_stream_leader("CATGA_EVENTS");
  REQUIRE(leader.has_value());

  std::atomic<int> published{0};
  std::atomic<int> retries{0};
  std::atomic<bool> failed{false};
  std::thread producer([&] {
    for (int i = 0; i < kEvents && !failed; ++i) {
      if (!fault::publish_credit(pub, i, &retries)) failed = true;
      published++;
    }
  });

  REQUIRE(catga::test::wait_for([&] { return published.load() >= kEvents / 3 || failed; }, 120s));
  REQUIRE(ledger.distinct() > 0);
  cluster.kill(*leader);
  const auto next = cluster.wait_for_stream_leader("CATGA_EVENTS", leader);
  REQUIRE(next.has_value());
  const int at_election = ledger.distinct();
  producer.join();
  REQUIRE_FALSE(failed.load());
  REQUIRE(catga::test::wait_for([&] { return ledger.distinct() >= kEvents; }, 180s));
  CHECK(ledger.distinct() > static_cast<std::size_t>(at_election));  // consuming went on after the election
  REQUIRE(catga::test::wait_for(
      [&] {
        auto h = a.transport->health();
        return h.consumers.size() == 1 && h.consumers[0].reachable && h.consumers[0].lag() == 0;
      },
      60s));
  MESSAGE("leader n" << *leader + 1 << " killed, new leader n" << *next + 1 << ", publish retries " << retries.load());
  fault::report("cluster_node_loss", ledger.tally(fault::credit_ids(kEvents)));
}
