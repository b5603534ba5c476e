// nats-server 2.9 on an R3 stream can store two conditional appends made at
// the same position (nats-server issue 4320). Such a double append is made
// here directly: a commit published with plain nats.c, without the
// expected-sequence header, claiming a version another commit holds. Every
// read keeps the first commit by stream sequence, the writer of the later one
// is told `conflict`, and a retried append whose ack was lost is recognised
// even when another writer appended after it.
#include <doctest/doctest.h>
#include <nats/nats.h>

#include <thread>

#include "es_test_support.hpp"
#include "raw_nats.hpp"

using namespace catga::eventsourcing;
using namespace std::chrono_literals;

namespace {

std::vector<EventData> deposits(std::initializer_list<std::int64_t> amounts) {
  std::vector<EventData> out;
  for (auto a : amounts) out.push_back(EventData::of(est::Deposited{a}));
  return out;
}

// A commit as append writes it, claiming versions first.., stored with no
// expected-sequence check (what the racing server did).
std::uint64_t raw_commit(catga::test::RawNats& raw, const StreamId& s, std::uint64_t first,
                         std::initializer_list<std::int64_t> amounts, const std::string& commit_id) {
  const std::uint64_t last = first + amounts.size() - 1;
  return est::raw_store(raw, s, est::deposit_commit(s, first, amounts, commit_id),
                        {{"Catga-Es-Version", std::to_string(last)}});
}

}  // namespace

TEST_CASE("read rule: a commit claiming a version already held is ignored by loads, reads and time travel") {
  catga::test::NatsServer server;
  auto store = est::store_on(est::connect(server));
  catga::test::RawNats raw(server.url());
  const StreamId acc{"Account", "D-1"};
  Repository<est::Account> accounts(store);

  auto v1 = store->append(acc, Position{}, deposits({1}));
  REQUIRE(v1);
  auto v2 = store->append(acc, v1->position, deposits({2}));
  REQUIRE(v2);
  // The racer: stored after version 2, claiming version 2 (and a 3rd event).
  const auto dup = raw_commit(raw, acc, 2, {100, 1000}, "racer");

  auto r = store->read_stream(acc).value();
  REQUIRE(r.commits.size() == 2);
  CHECK(r.commits[1].sequence == v2->position.sequence);
  CHECK(r.ignored == 1);
  CHECK(r.end == Position{2, dup});  // the next append expects the racer's sequence
  CHECK(store->read(acc).value().size() == 2);
  CHECK(store->last(acc).value() == Position{2, dup});
  CHECK(store->last_commit(acc).value()->sequence == v2->position.sequence);
  CHECK(store->ignored_commits() >= 1);

  auto a = accounts.load("D-1").value();
  CHECK(a.balance == 3);
  CHECK(a.version() == 2);
  CHECK(a.position() == Position{2, dup});
  CHECK(accounts.load("D-1", {.as_of_version = 2}).value().balance == 3);
  CHECK(accounts.load("D-1", {.as_of_version = 3}).value().balance == 3);
  CHECK(accounts.load("D-1", {.as_of_version = 1}).value().balance == 1);

  // The aggregate moves on after the ignored commit: version 3 is ours.
  auto saved = accounts.execute("D-1", [](est::Account& x) { return x.deposit(5); });
  REQUIRE_MESSAGE(saved, (saved ? "" : saved.error().message));
  CHECK(saved->position.version == 3);
  auto b = accounts.load("D-1").value();
  CHECK(b.balance == 8);
  CHECK(b.log == std::vector<std::string>{"+1", "+2", "+5"});
  CHECK(accounts.load("D-1", {.as_of_time = std::chrono::system_clock::now()}).value().balance == 8);
  // A version-only append resolves the position by the same rule.
  CHECK(store->append(acc, std::uint64_t{3}, deposits({7})));
  CHECK(accounts.load("D-1").value().balance == 15);
}

TEST_CASE("read rule with a snapshot: a racer right after the snapshot's commit is ignored") {
  catga::test::NatsServer server;
  auto conn = est::connect(server);
  auto store = est::store_on(conn);
  catga::test::RawNats raw(server.url());
  Repository<est::Account> accounts(store, est::snapshot_bucket(conn), {.snapshot_every = 1});
  REQUIRE(accounts.execute("S-1", [](est::Account& x) { return x.deposit(4); }));
  raw_commit(raw, {"Account", "S-1"}, 1, {50}, "racer");
  auto a = accounts.load("S-1").value();
  CHECK(a.balance == 4);
  REQUIRE(accounts.execute("S-1", [](est::Account& x) { return x.deposit(6); }));
  CHECK(accounts.load("S-1").value().balance == 10);
  CHECK(accounts.load("S-1", {.use_snapshot = false}).value().balance == 10);
}

TEST_CASE("the writer whose commit lost the version is told conflict (retryable); its commit is ignored") {
  catga::test::NatsServer server;
  // The race happens on replicated streams, whose appends are confirmed:
  // this single server confirms too.
  auto options = est::memory_store();
  options.confirm_appends = EventStoreOptions::Confirm::always;
  auto store = est::store_on(est::connect(server), options);
  catga::test::RawNats raw(server.url());
  const StreamId acc{"Account", "L-1"};
  Repository<est::Account> accounts(store);

  auto v1 = store->append(acc, Position{}, deposits({1}));
  REQUIRE(v1);
  // The winner of the race was stored first, claiming version 2 ...
  const auto winner = raw_commit(raw, acc, 2, {10}, "winner");
  // ... and the server let the loser through as well: it expected version 1
  // at a sequence the subject's last message has (what 2.9 on R3 did).
  auto loser = store->append(acc, Position{1, winner}, deposits({20}), {.commit_id = "loser"});
  REQUIRE_FALSE(loser);
  CHECK(loser.error().code == "conflict");
  CHECK(loser.error().retryable);

  auto r = store->read_stream(acc).value();
  CHECK(r.ignored == 1);  // stored, but ignored
  REQUIRE(r.commits.size() == 2);
  CHECK(r.commits[1].commit_id == "winner");
  CHECK(accounts.load("L-1").value().balance == 11);
  // The retry (reload, decide again) appends after both.
  auto retry = accounts.execute("L-1", [](est::Account& x) { return x.deposit(20); });
  REQUIRE_MESSAGE(retry, (retry ? "" : retry.error().message));
  CHECK(retry->position.version == 3);
  CHECK(accounts.load("L-1").value().balance == 31);
}

TEST_CASE("an append whose ack was lost is recognised after another writer appended behind it") {
  catga::test::NatsServer server;
  auto o = est::memory_store();
  o.stream.duplicate_window = 100ms;  // the retry meets the sequence check, as on an R3 cluster
  auto store = est::store_on(est::connect(server), o);
  const StreamId acc{"Account", "K-1"};

  auto a = store->append(acc, Position{}, deposits({7}), {.commit_id = "c-1"});
  REQUIRE(a);
  auto b = store->append(acc, a->position, deposits({8}), {.commit_id = "c-2"});  // another writer
  REQUIRE(b);
  std::this_thread::sleep_for(400ms);  // let the server forget c-1's message id
  // c-1's writer never saw its ack and sends the same commit again.
  auto again = store->append(acc, Position{}, deposits({7}), {.commit_id = "c-1"});
  REQUIRE_MESSAGE(again, (again ? "" : again.error().message));
  CHECK(again->already_stored);
  CHECK(again->position == a->position);
  auto commits = store->read(acc).value();
  REQUIRE(commits.size() == 2);  // not stored twice
  CHECK(commits[0].commit_id == "c-1");
  CHECK(commits[1].commit_id == "c-2");
  // A commit id that is not there is still a conflict.
  auto other = store->append(acc, Position{}, deposits({9}), {.commit_id = "c-3"});
  REQUIRE_FALSE(other);
  CHECK(other.error().code == "conflict");
  // Also for a later position.
  auto c = store->append(acc, b->position, deposits({1}), {.commit_id = "c-4"});
  REQUIRE(c);
  std::this_thread::sleep_for(400ms);
  auto again_b = store->append(acc, a->position, deposits({8}), {.commit_id = "c-2"});
  REQUIRE(again_b);
  CHECK(again_b->already_stored);
  CHECK(again_b->position == b->position);
  CHECK(store->read(acc).value().size() == 3);
}
