// Retried appends on a 3-node cluster with an R3 store stream: nats-server
// 2.9 answers a retry of a stored commit with "wrong last sequence" (the
// sequence check runs before dedup there); the store must recognise its own
// commit and never store it twice, also across a leader crash.
#include <doctest/doctest.h>

#include <algorithm>
#include <thread>

#include "catga/nats/jetstream_transport.hpp"
#include "es_test_support.hpp"
#include "nats_cluster.hpp"
#include "raw_nats.hpp"
#include "wait_for.hpp"

using namespace catga::eventsourcing;
using namespace std::chrono_literals;

TEST_CASE("R3 cluster: a retried append is recognised, a leader crash loses and duplicates nothing") {
  catga::test::NatsCluster cluster;
  auto conn = est::connect_to(cluster.urls(), "es-cluster", 60s);
  EventStoreOptions so;
  so.stream.replicas = 3;
  so.timeout = 60s;  // elections on a loaded 2-core machine take a while
  auto store = EventStore::create(conn, so).value();
  const StreamId acc{"Account", "C-1"};
  // A replicated stream's appends are confirmed on the leader (a single
  // replica's are not: es_store).
  catga::test::RawNats raw(cluster.urls().front());
  natsSubscription* gets = nullptr;
  catga::test::check(natsConnection_SubscribeSync(&gets, raw.nc(), "$JS.API.STREAM.MSG.GET.>"), "subscribe");
  catga::test::check(natsConnection_Flush(raw.nc()), "flush");
  std::this_thread::sleep_for(300ms);  // the interest reaches the other nodes

  auto a = store->append(acc, Position{}, {EventData::of(est::Deposited{1})}, {.commit_id = "c-1"});
  REQUIRE(a);
  {
    natsMsg* m = nullptr;
    CHECK(natsSubscription_NextMsg(&m, gets, 5'000) == NATS_OK);
    natsMsg_Destroy(m);
    natsSubscription_Destroy(gets);
  }
  auto again = store->append(acc, Position{}, {EventData::of(est::Deposited{1})}, {.commit_id = "c-1"});
  REQUIRE(again);
  CHECK(again->already_stored);
  CHECK(again->position == a->position);
  auto other = store->append(acc, Position{}, {EventData::of(est::Deposited{2})}, {.commit_id = "c-2"});
  REQUIRE_FALSE(other);
  CHECK(other.error().code == "conflict");

  // Keep appending while the stream leader crashes: appends in flight time
  // out or lose their ack and are retried by append itself.
  Position at = a->position;
  int killed = -1;
  for (int i = 2; i <= 40; ++i) {
    if (i == 15) {
      auto leader = cluster.stream_leader(store->options().stream_name());
      REQUIRE(leader);
      killed = *leader;
      cluster.kill(killed);
    }
    auto r = store->append(acc, at, {EventData::of(est::Deposited{i})});
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    at = r->position;
  }
  cluster.restart(killed);
  // Reading creates a consumer: on a loaded machine the cluster may still be
  // settling after the crash, and a read is safe to repeat.
  catga::Result<std::vector<Commit>> read = catga::make_error("timeout", "not read");
  for (int i = 0; i < 6 && !read; ++i) read = store->read(acc);
  REQUIRE_MESSAGE(read, (read ? "" : read.error().message));
  const auto& commits = *read;
  std::string versions;
  for (const auto& c : commits) versions += std::to_string(c.last_version()) + "@" + std::to_string(c.sequence) + " ";
  INFO("commits: " << versions << " last: " << store->last(acc).value().version);
  REQUIRE(commits.size() == 40);
  for (std::size_t i = 0; i < commits.size(); ++i) CHECK(commits[i].last_version() == i + 1);
}

TEST_CASE("R3 cluster: an append sent to a frozen stream leader is stored by the next leader before the deadline") {
  catga::test::NatsCluster cluster;
  EventStoreOptions so;
  so.stream.replicas = 3;
  so.timeout = 60s;
  auto first = EventStore::create(est::connect_to(cluster.urls(), "es-frozen", 60s), so).value();
  const StreamId acc{"Account", "F-1"};
  auto a = first->append(acc, Position{}, {EventData::of(est::Deposited{1})});
  REQUIRE(a);
  const auto leader = cluster.stream_leader(so.stream_name());
  REQUIRE(leader);

  // A client connected only to the other nodes: its publish is routed to the
  // frozen leader and never answered. One try waits attempt_timeout, then
  // the commit is sent again and the newly elected leader stores it.
  std::vector<std::string> others;
  for (int i = 0; i < catga::test::NatsCluster::kNodes; ++i) {
    if (i != *leader) others.push_back(cluster.url(i));
  }
  auto store = EventStore::create(est::connect_to(others, "es-frozen", 60s), so).value();
  cluster.freeze(*leader);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = store->append(acc, a->position, {EventData::of(est::Deposited{2})});
  const auto took = std::chrono::steady_clock::now() - t0;
  cluster.thaw(*leader);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  CHECK(took < so.timeout);  // not one try that used up the deadline
  CHECK(r->position.version == 2);

  auto read = store->read(acc);
  for (int i = 0; i < 6 && !read; ++i) read = store->read(acc);
  REQUIRE_MESSAGE(read, (read ? "" : read.error().message));
  REQUIRE(read->size() == 2);
  CHECK((*read)[0].last_version() == 1);
  CHECK((*read)[1].last_version() == 2);
}

TEST_CASE("R3 cluster: racing writers on different nodes; every winner is the commit readers keep") {
  catga::test::NatsCluster cluster;
  EventStoreOptions so;
  so.stream.replicas = 3;
  so.timeout = 60s;
  auto store_at = [&](int node) {
    return EventStore::create(est::connect_to({cluster.url(node)}, "es-race-" + std::to_string(node), 60s), so).value();
  };
  auto s1 = store_at(0);
  auto s2 = store_at(1);
  const StreamId acc{"Account", "RACE-1"};
  std::vector<std::uint64_t> won;
  int conflicts = 0;
  for (int round = 0; round < 60; ++round) {
    const Position at = s1->last(acc).value();
    catga::Result<AppendResult> r1 = catga::make_error("x", "x"), r2 = catga::make_error("x", "x");
    std::thread t([&] { r2 = s2->append(acc, at, {EventData::of(est::Deposited{2})}); });
    r1 = s1->append(acc, at, {EventData::of(est::Deposited{1})});
    t.join();
    for (auto* r : {&r1, &r2}) {
      if (*r) {
        won.push_back((*r)->position.sequence);
      } else {
        REQUIRE_MESSAGE((*r).error().code == "conflict", (*r).error().message);
        ++conflicts;
      }
    }
  }
  const auto read = s1->read_stream(acc).value();
  INFO("won " << won.size() << " conflicts " << conflicts << " ignored on read " << read.ignored);
  REQUIRE(read.commits.size() == won.size());
  for (std::size_t i = 0; i < read.commits.size(); ++i) {
    CHECK(read.commits[i].last_version() == i + 1);
    CHECK(std::find(won.begin(), won.end(), read.commits[i].sequence) != won.end());
  }
  CHECK(won.size() + static_cast<std::size_t>(conflicts) == 120);
}

// The double append as the relay meets it after a restart: the commit that
// holds version 1 was relayed by an earlier instance, so only the stream
// leader can say that the racer (stored with plain nats.c, expecting the same
// empty stream as that commit) came second. Before: the racer was relayed.
TEST_CASE("R3 cluster: a relay that did not see the earlier commit still does not relay a double append") {
  catga::test::NatsCluster cluster;
  auto conn = est::connect_to(cluster.urls(), "es-relay", 60s);
  catga::nats::JetStreamOptions js;
  js.events.replicas = 3;
  js.dead_letters.replicas = 3;
  auto transport = catga::nats::JetStreamTransport::create(conn, js).value();
  EventStoreOptions so;
  so.stream.replicas = 3;
  so.timeout = 60s;
  auto store = EventStore::create(conn, so).value();
  catga::test::RawNats raw(cluster.urls().front());

  const StreamId acc{"Account", "R-3"};
  auto relay = EventRelay::start(store).value();
  REQUIRE(store->append(acc, Position{}, {EventData::of(est::Deposited{10})}));
  REQUIRE(catga::test::wait_for([&] { auto l = relay->lag(); return l && *l == 0; }, 60s));
  relay.reset();

  est::raw_store(raw, acc, est::deposit_commit(acc, 1, {1000}, "racer"),
                 {{"Catga-Es-Version", "1"}, {"Catga-Es-Expected-Sequence", "0"}});
  REQUIRE(store->append(acc, store->read_stream(acc).value().end, {EventData::of(est::Deposited{5})}));
  auto again = EventRelay::start(store).value();
  REQUIRE(catga::test::wait_for([&] { auto l = again->lag(); return l && *l == 0; }, 60s));
  CHECK(transport->health().stream_messages == 2);  // 10 and 5, never the racer's 1000
  CHECK(again->health().ignored == 1);
}
