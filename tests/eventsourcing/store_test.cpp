// EventStore against a real nats-server: atomic commits, optimistic
// concurrency, retries after a lost ack, metadata, time travel, upcasting.
#include <doctest/doctest.h>

#include <thread>

#include "es_test_support.hpp"

using namespace catga::eventsourcing;
using namespace std::chrono_literals;

namespace {

std::vector<EventData> deposits(std::initializer_list<std::int64_t> amounts) {
  std::vector<EventData> out;
  for (auto a : amounts) out.push_back(EventData::of(est::Deposited{a}));
  return out;
}

}  // namespace

TEST_CASE("append stores a batch as one commit and read returns commits in order with their metadata") {
  catga::test::NatsServer server;
  auto store = est::store_on(est::connect(server));
  const StreamId acc{"Account", "A-1"};

  CHECK(store->read(acc).value().empty());
  CHECK(store->last(acc).value() == Position{});

  auto first = store->append(acc, Position{}, deposits({10, 20, 30}), {.actor = "alice", .correlation_id = "corr-1", .causation_id = "cmd-1"});
  REQUIRE(first);
  CHECK(first->position.version == 3);
  CHECK(first->first_version == 1);
  CHECK_FALSE(first->already_stored);

  auto second = store->append(acc, first->position, {EventData::of(est::Withdrawn{5})}, {.actor = "bob"});
  REQUIRE(second);
  CHECK(second->position.version == 4);
  CHECK(second->position.sequence > first->position.sequence);

  auto commits = store->read(acc).value();
  REQUIRE(commits.size() == 2);
  REQUIRE(commits[0].events.size() == 3);
  CHECK(commits[0].sequence == first->position.sequence);
  CHECK(commits[0].stream == acc);
  for (std::uint64_t i = 0; i < 3; ++i) {
    const auto& e = commits[0].events[i];
    CHECK(e.version == i + 1);
    CHECK(e.type == "Deposited");
    CHECK(e.actor == "alice");
    CHECK(e.correlation_id == "corr-1");
    CHECK(e.causation_id == "cmd-1");
    CHECK(e.schema == 1);
    CHECK(!e.id.empty());
    CHECK(e.time.time_since_epoch().count() > 0);
    CHECK(e.as<est::Deposited>().value().amount == static_cast<std::int64_t>((i + 1) * 10));
  }
  CHECK(commits[1].events.at(0).actor == "bob");
  CHECK(commits[1].events.at(0).version == 4);
  CHECK(commits[1].events.at(0).as<est::Deposited>().ok());  // same field name: decodes, type tells them apart
  CHECK(store->last(acc).value() == second->position);

  SUBCASE("a stale expected position is a retryable conflict and stores nothing") {
    auto stale = store->append(acc, first->position, deposits({1}));
    REQUIRE_FALSE(stale);
    CHECK(stale.error().code == "conflict");
    CHECK(stale.error().retryable);
    auto as_new = store->append(acc, Position{}, deposits({1}));
    REQUIRE_FALSE(as_new);
    CHECK(as_new.error().code == "conflict");
    CHECK(store->read(acc).value().size() == 2);
  }
  SUBCASE("a version without sequence is resolved and still checked") {
    CHECK(store->append(acc, std::uint64_t{4}, deposits({1})).value().position.version == 5);
    auto r = store->append(acc, std::uint64_t{4}, deposits({1}));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == "conflict");
  }
  SUBCASE("read after a sequence returns the tail only") {
    auto tail = store->read(acc, {.after_sequence = first->position.sequence}).value();
    REQUIRE(tail.size() == 1);
    CHECK(tail[0].first_version() == 4);
  }
  SUBCASE("time travel: a read up to version k cuts inside a commit") {
    auto upto2 = store->read(acc, {.to_version = 2}).value();
    REQUIRE(upto2.size() == 1);
    CHECK(upto2[0].events.size() == 2);
    auto before_second = store->read(acc, {.to_time = commits[0].events[0].time}).value();
    REQUIRE(before_second.size() == 1);
    CHECK(before_second[0].last_version() == 3);
    CHECK(store->read(acc, {.to_time = commits[0].events[0].time - 1ms}).value().empty());
  }
}

namespace {

// Counts the leader gets ($JS.API.STREAM.MSG.GET) stores send to `server`.
class LeaderGets {
 public:
  explicit LeaderGets(const catga::test::NatsServer& server) : raw_(server.url()) {
    catga::test::check(natsConnection_SubscribeSync(&sub_, raw_.nc(), "$JS.API.STREAM.MSG.GET.>"), "subscribe");
    catga::test::check(natsConnection_Flush(raw_.nc()), "flush");
  }
  ~LeaderGets() { natsSubscription_Destroy(sub_); }
  // Those seen since the last call. The server routed each get to this
  // connection before answering it, so after a round trip of ours (the
  // flush) every get sent so far is queued here.
  int count() {
    catga::test::check(natsConnection_Flush(raw_.nc()), "flush");
    int n = 0;
    natsMsg* m = nullptr;
    while (natsSubscription_NextMsg(&m, sub_, 10) == NATS_OK) {
      natsMsg_Destroy(m);
      ++n;
    }
    return n;
  }

 private:
  catga::test::RawNats raw_;
  natsSubscription* sub_ = nullptr;
};

}  // namespace

TEST_CASE("an append to a single-replica stream is the publish alone: no leader get confirms it") {
  // The server checks the expected position and stores the commit in one
  // step when the stream has one replica (no raft group): no second commit
  // can claim the version, and the confirming get (one request per append)
  // was pure cost. Before: one get per append here.
  catga::test::NatsServer server;
  auto store = est::store_on(est::connect(server));
  LeaderGets gets(server);
  const StreamId acc{"Account", "R1-1"};
  auto first = store->append(acc, Position{}, deposits({10}));
  REQUIRE(first);
  auto second = store->append(acc, first->position, deposits({20}));
  REQUIRE(second);
  auto other = est::store_on(est::connect(server, "es-other"));
  auto third = other->append(acc, other->read_stream(acc).value().end, deposits({30}));
  REQUIRE(third);
  CHECK(gets.count() == 0);
  // The server's own check still refuses a stale position.
  auto stale = store->append(acc, second->position, deposits({50}));
  REQUIRE_FALSE(stale);
  CHECK(stale.error().code == catga::errc::conflict);
  CHECK(store->read(acc).value().size() == 3);
  CHECK(other->read_stream(acc).value().end.version == 3);
}

TEST_CASE("an append after this store's read or append asks the leader once to confirm it, not twice") {
  // confirm() used to get the message at the expected position from the
  // leader on every append (2 gets + the publish); what this store already
  // read or appended there is known and never changes. Confirming is for
  // replicated streams; `always` makes this single server confirm too.
  catga::test::NatsServer server;
  auto options = est::memory_store();
  options.confirm_appends = EventStoreOptions::Confirm::always;
  auto store = est::store_on(est::connect(server), options);
  LeaderGets gets(server);
  auto count_gets = [&] { return gets.count(); };
  const StreamId acc{"Account", "G-1"};
  auto first = store->append(acc, Position{}, deposits({10}));
  REQUIRE(first);
  CHECK(count_gets() == 1);  // the next message after "nothing": ours
  auto second = store->append(acc, first->position, deposits({20}));
  REQUIRE(second);
  CHECK(count_gets() == 1);  // the base is our own first append
  // Another store (another replica) read the stream, then appends.
  auto other = est::store_on(est::connect(server, "es-other"), options);
  const auto end = other->read_stream(acc).value().end;
  CHECK(end == second->position);
  count_gets();  // a replicated store's read may ask the leader; not counted
  auto third = other->append(acc, end, deposits({30}));
  REQUIRE(third);
  CHECK(count_gets() == 1);
  // A position this store has not seen is checked on the leader.
  auto fourth = store->append(acc, third->position, deposits({40}));
  REQUIRE(fourth);
  CHECK(count_gets() == 2);
  // What it remembers of an older position lets no stale append through.
  auto stale = store->append(acc, second->position, deposits({50}));
  REQUIRE_FALSE(stale);
  CHECK(stale.error().code == catga::errc::conflict);
  CHECK(store->read(acc).value().size() == 4);
}

TEST_CASE("reads leave no consumer behind, though they do not wait for its deletion") {
  catga::test::NatsServer server;
  auto store = est::store_on(est::connect(server));
  const StreamId acc{"Account", "R-1"};
  for (int i = 0; i < 10; ++i) {
    CHECK(store->read(StreamId{"Account", "empty-" + std::to_string(i)}).value().empty());
  }
  Position at;
  for (int i = 0; i < 10; ++i) {
    at = store->append(acc, at, deposits({i})).value().position;
    CHECK(store->read(acc).value().size() == static_cast<std::size_t>(i + 1));
  }
  catga::test::RawNats raw(server.url());
  int consumers = -1;
  for (int i = 0; i < 100 && consumers != 0; ++i) {
    jsStreamInfo* si = nullptr;
    catga::test::check(js_GetStreamInfo(&si, raw.js(), "CATGA_ES", nullptr, nullptr), "stream info");
    consumers = static_cast<int>(si->State.Consumers);
    jsStreamInfo_Destroy(si);
    if (consumers != 0) std::this_thread::sleep_for(20ms);
  }
  CHECK(consumers == 0);
}

TEST_CASE("stream ids and events are validated before anything is sent") {
  catga::test::NatsServer server;
  auto store = est::store_on(est::connect(server));
  CHECK(store->append({"Account", "a.b"}, Position{}, deposits({1})).error().code == "validation");
  CHECK(store->append({"Acc ount", "x"}, Position{}, deposits({1})).error().code == "validation");
  CHECK(store->append({"Account", "x"}, Position{}, {}).error().code == "validation");
  CHECK(store->read({"Account", ""}).error().code == "validation");
}

TEST_CASE("a retried append whose ack was lost is recognised, never stored twice") {
  catga::test::NatsServer server;
  auto conn = est::connect(server);
  const StreamId acc{"Account", "R-1"};

  SUBCASE("inside the dedup window: the server deduplicates by Nats-Msg-Id") {
    auto store = est::store_on(conn);
    auto a = store->append(acc, Position{}, deposits({7}), {.commit_id = "c-1"});
    REQUIRE(a);
    // The same commit sent again, as append's own retry does after a timeout.
    auto again = store->append(acc, Position{}, deposits({7}), {.commit_id = "c-1"});
    REQUIRE(again);
    CHECK(again->already_stored);
    CHECK(again->position == a->position);
    CHECK(store->read(acc).value().size() == 1);

    // Another writer expecting the same version has its own commit id: it
    // must lose, not be mistaken for a duplicate.
    auto other = store->append(acc, Position{}, deposits({8}), {.commit_id = "c-2"});
    REQUIRE_FALSE(other);
    CHECK(other.error().code == "conflict");
  }
  SUBCASE("outside the dedup window (as an R3 cluster answers): wrong last sequence, then the id is compared") {
    auto o = est::memory_store();
    o.stream.name = "ES_SHORT_DEDUP";
    o.prefix = "short";
    o.stream.duplicate_window = 100ms;
    auto store = est::store_on(conn, o);
    auto a = store->append(acc, Position{}, deposits({7}), {.commit_id = "c-1"});
    REQUIRE(a);
    // Let the server forget the id: the retry then meets the sequence check.
    // (Nothing observable to wait for; the window is 100 ms.)
    std::this_thread::sleep_for(400ms);
    auto again = store->append(acc, Position{}, deposits({7}), {.commit_id = "c-1"});
    REQUIRE(again);
    CHECK(again->already_stored);
    CHECK(again->position == a->position);
    CHECK(store->read(acc).value().size() == 1);
    auto other = store->append(acc, Position{}, deposits({8}), {.commit_id = "c-2"});
    REQUIRE_FALSE(other);
    CHECK(other.error().code == "conflict");
  }
}

TEST_CASE("upcasting: events stored in an old shape are read in the current one") {
  catga::test::NatsServer server;
  auto conn = est::connect(server);
  const StreamId acc{"Account", "U-1"};
  {
    // Version 1 of "Deposited" held cents in "cents".
    auto old_store = est::store_on(conn);
    REQUIRE(old_store->append(acc, Position{}, {EventData{"Deposited", 1, {{"cents", 1250}}}}));
  }
  auto up = std::make_shared<Upcasters>();
  up->add("Deposited", 1, [](nlohmann::json d) {
    return nlohmann::json{{"amount_cents", d.at("cents")}};
  });
  up->add("Deposited", 2, [](nlohmann::json d) {
    return nlohmann::json{{"amount", d.at("amount_cents").get<std::int64_t>() / 100}};
  });
  CHECK(up->current("Deposited") == 3);
  CHECK(up->current("Withdrawn") == 1);
  auto o = est::memory_store();
  o.upcasters = up;
  auto store = est::store_on(conn, o);
  REQUIRE(store->append(acc, std::uint64_t{1}, deposits({3})));  // written in the current shape (schema 3)

  auto commits = store->read(acc).value();
  REQUIRE(commits.size() == 2);
  const auto& old = commits[0].events.at(0);
  CHECK(old.schema == 3);
  CHECK(old.as<est::Deposited>().value().amount == 12);
  CHECK(commits[1].events.at(0).schema == 3);
  CHECK(commits[1].events.at(0).as<est::Deposited>().value().amount == 3);

  // And through an aggregate.
  Repository<est::Account> accounts(store);
  CHECK(accounts.load("U-1").value().balance == 15);
}
