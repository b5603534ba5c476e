// Retried appends on a 3-node cluster with an R3 store stream: nats-server
// 2.9 answers a retry of a stored commit with "wrong last sequence" (the
// sequence check runs before dedup there); the store must recognise its own
// commit and never store it twice, also across a leader crash.
#include <doctest/doctest.h>

#include "es_test_support.hpp"
#include "nats_cluster.hpp"

using namespace catga::eventsourcing;
using namespace std::chrono_literals;

TEST_CASE("R3 cluster: a retried append is recognised, a leader crash loses and duplicates nothing") {
  catga::test::NatsCluster cluster;
  catga::nats::NatsOptions o;
  o.servers = cluster.urls();
  o.name = "es-cluster";
  auto conn = catga::nats::Connection::connect(o).value();
  REQUIRE(conn->wait_connected(60s));
  EventStoreOptions so;
  so.stream.replicas = 3;
  so.timeout = 60s;  // elections on a loaded 2-core machine take a while
  auto store = EventStore::create(conn, so).value();
  const StreamId acc{"Account", "C-1"};

  auto a = store->append(acc, Position{}, {EventData::of(est::Deposited{1})}, {.commit_id = "c-1"});
  REQUIRE(a);
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
