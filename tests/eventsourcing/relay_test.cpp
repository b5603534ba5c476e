// EventRelay: appended events reach catga subscribers as catga events
// (catga.evt.<Type>), once, with their ids; a restarted relay repeats nothing.
#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "catga/mediator.hpp"
#include "catga/nats/jetstream_transport.hpp"
#include "es_test_support.hpp"
#include "wait_for.hpp"

using namespace catga::eventsourcing;
using namespace std::chrono_literals;

TEST_CASE("appended events are published as catga events, each once, with the ids of the store") {
  catga::test::NatsServer server;
  auto conn = est::connect(server);
  auto transport = est::memory_transport(conn);
  auto store = est::store_on(conn);

  catga::Mediator m;
  m.attach(*transport);
  std::mutex mu;
  std::multiset<std::int64_t> amounts;
  std::set<std::string> correlations;
  std::atomic<int> received{0};
  auto sub = m.subscribe<est::Deposited>({.group = "audit"}, [&](const est::Deposited& d, catga::Context& ctx) {
                std::lock_guard lock(mu);
                amounts.insert(d.amount);
                correlations.insert(ctx.correlation_id.text().str());
                ++received;
              }).value();

  auto relay = EventRelay::start(store).value();
  const std::string corr = catga::MessageId::generate().text().str();
  Position at{};
  for (int i = 1; i <= 20; ++i) {
    at = store->append({"Account", "E-1"}, at, {EventData::of(est::Deposited{i}), EventData::of(est::Renamed{"x"})},
                       {.actor = "alice", .correlation_id = corr})
             .value()
             .position;
  }
  REQUIRE(catga::test::wait_for([&] { return received.load() == 20; }, 60s));
  REQUIRE(catga::test::wait_for([&] { auto l = relay->lag(); return l && *l == 0; }, 60s));
  CHECK(relay->published() == 40);

  // A new relay instance under another name replays the whole store: the
  // events stream drops every repeat by Nats-Msg-Id.
  relay.reset();
  auto again = EventRelay::start(store, {.name = "second"}).value();
  REQUIRE(catga::test::wait_for([&] { auto l = again->lag(); return l && *l == 0; }, 60s));
  CHECK(again->published() == 40);
  auto health = transport->health();
  CHECK(health.stream_messages == 40);  // 20 Deposited + 20 Renamed, no repeats
  std::lock_guard lock(mu);
  CHECK(received.load() == 20);
  CHECK(amounts.size() == 20);
  CHECK(*amounts.begin() == 1);
  CHECK(*amounts.rbegin() == 20);
  CHECK(correlations == std::set<std::string>{corr});
}

// A double append (nats-server 2.9 on a clustered stream can store two
// conditional appends made at the same position): the racer is stored here
// with plain nats.c, claiming version 1 like the commit before it. Before:
// the relay published the racer's event too (1000 reached subscribers).
TEST_CASE("a commit claiming a version an earlier commit holds is not relayed") {
  catga::test::NatsServer server;
  auto conn = est::connect(server);
  auto transport = est::memory_transport(conn);
  auto store = est::store_on(conn);
  catga::test::RawNats raw(server.url());
  auto relay = EventRelay::start(store).value();

  const StreamId acc{"Account", "R-1"};
  REQUIRE(store->append(acc, Position{}, {EventData::of(est::Deposited{10})}));
  est::raw_store(raw, acc, est::deposit_commit(acc, 1, {1000}, "racer"),
                 {{"Catga-Es-Version", "1"}, {"Catga-Es-Expected-Sequence", "0"}});
  REQUIRE(store->append(acc, store->read_stream(acc).value().end, {EventData::of(est::Deposited{5})}));

  REQUIRE(catga::test::wait_for([&] { auto l = relay->lag(); return l && *l == 0; }, 60s));
  CHECK(transport->health().stream_messages == 2);  // 10 and 5, never the racer's 1000
  CHECK(relay->published() == 2);
  CHECK(relay->health().ignored == 1);
}

// A batch that fails is retried in place; what the relay knew of earlier
// batches must survive it. On an R1 stream the relay knows a double append
// only from the earlier commit it relayed itself: here that commit comes in
// one batch, the racer in a later one that fails once (the events stream is
// full and refuses the commit after it). Before: a failed batch cleared what
// the relay knew, and the retry relayed the racer's 1000.
TEST_CASE("a double append is not relayed when its batch fails and is retried") {
  catga::test::NatsServer server;
  auto conn = est::connect(server);
  auto store = est::store_on(conn);
  catga::test::RawNats raw(server.url());
  // An events stream that holds one message and refuses more: every batch
  // with something to publish fails until there is room.
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = "RETRY_EVENTS";
  const char* subjects[] = {"retry.evt.>"};
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_MemoryStorage;
  cfg.MaxMsgs = 1;
  cfg.Discard = js_DiscardNew;
  jsErrCode jerr{};
  catga::test::check(js_AddStream(nullptr, raw.js(), &cfg, nullptr, &jerr), "add events stream");
  auto events = [&] {
    jsStreamInfo* info = nullptr;
    catga::test::check(js_GetStreamInfo(&info, raw.js(), "RETRY_EVENTS", nullptr, &jerr), "events stream info");
    const auto n = info->State.Msgs;
    jsStreamInfo_Destroy(info);
    return n;
  };
  auto relay = EventRelay::start(store, {.name = "retry", .events_prefix = "retry"}).value();

  const StreamId acc{"Account", "RT-1"};
  const StreamId other{"Account", "RT-2"};
  REQUIRE(store->append(acc, Position{}, {EventData::of(est::Deposited{10})}));
  REQUIRE(catga::test::wait_for([&] { auto l = relay->lag(); return l && *l == 0; }, 60s));
  REQUIRE(events() == 1);  // full now

  // The next commit's batch fails and is retried; meanwhile the racer and
  // one more commit are stored. Past the pull's expiry both wait on the
  // server, so the next pull delivers them as one batch.
  const auto d = store->append(other, Position{}, {EventData::of(est::Deposited{1})}).value();
  REQUIRE(catga::test::wait_for([&] { return !relay->health().last_error.empty(); }, 60s));
  std::this_thread::sleep_for(3s);
  est::raw_store(raw, acc, est::deposit_commit(acc, 1, {1000}, "racer"),
                 {{"Catga-Es-Version", "1"}, {"Catga-Es-Expected-Sequence", "0"}});
  REQUIRE(store->append(other, d.position, {EventData::of(est::Deposited{2})}));
  {
    jsConsumerInfo* ci = nullptr;
    catga::test::check(js_GetConsumerInfo(&ci, raw.js(), store->options().stream_name().c_str(), "es_relay_retry",
                                          nullptr, &jerr),
                       "relay consumer info");
    const auto pending = ci->NumPending;
    jsConsumerInfo_Destroy(ci);
    REQUIRE(pending == 2);
  }

  // Room for one: the retried commit goes in, the batch of racer and commit
  // fails (the commit is refused) and is retried at least once.
  catga::test::check(js_PurgeStream(raw.js(), "RETRY_EVENTS", nullptr, &jerr), "purge events stream");
  REQUIRE(catga::test::wait_for([&] { return events() == 1; }, 60s));
  const auto tried = relay->published();
  REQUIRE(catga::test::wait_for([&] { return relay->published() >= tried + 2; }, 60s));

  // Room for all: the retry goes through.
  cfg.MaxMsgs = -1;
  catga::test::check(js_UpdateStream(nullptr, raw.js(), &cfg, nullptr, &jerr), "open events stream");
  REQUIRE(catga::test::wait_for([&] { auto l = relay->lag(); return l && *l == 0; }, 60s));
  CHECK(events() == 2);  // 1 and 2, never the racer's 1000
  CHECK(relay->health().ignored >= 2);  // the first try and the retries
}

// Version 2 of Deposited renamed "amount" to "cents": the store reads old
// commits through its upcaster, and a consumer has an upcaster of its own
// for old bodies from other producers. The relay says which schema it sends
// (Catga-Message-Version): without it the consumer upcast the store's
// already-current data again and dead-lettered it.
namespace relayv2 {
struct Deposited {
  std::int64_t cents = 0;
};
CATGA_EVENT(Deposited, cents)
CATGA_VERSION(Deposited, 2)
nlohmann::json rename_amount(nlohmann::json body) {
  body["cents"] = body.at("amount");
  body.erase("amount");
  return body;
}
}  // namespace relayv2

TEST_CASE("the relay sends the store's schema as Catga-Message-Version: consumers do not upcast it again") {
  catga::test::NatsServer server;
  auto conn = est::connect(server);
  auto transport = est::memory_transport(conn);
  auto upcasters = std::make_shared<Upcasters>();
  upcasters->add("Deposited", 1, relayv2::rename_amount);
  auto options = est::memory_store();
  options.upcasters = upcasters;
  auto store = est::store_on(conn, options);

  catga::Mediator m;
  m.attach(*transport);
  m.upcast<relayv2::Deposited>(1, relayv2::rename_amount);
  std::mutex mu;
  std::multiset<std::int64_t> cents;
  auto sub = m.subscribe<relayv2::Deposited>({.group = "audit"}, [&](const relayv2::Deposited& d) {
                std::lock_guard lock(mu);
                cents.insert(d.cents);
              }).value();
  auto relay = EventRelay::start(store).value();

  const StreamId acc{"Account", "V-1"};
  auto at = store->append(acc, Position{}, {EventData{"Deposited", 1, {{"amount", 5}}}}).value().position;
  REQUIRE(store->append(acc, at, {EventData::of(relayv2::Deposited{7})}));
  REQUIRE(catga::test::wait_for([&] { std::lock_guard lock(mu); return cents.size() == 2; }, 60s));
  std::lock_guard lock(mu);
  CHECK(cents == std::multiset<std::int64_t>{5, 7});
  CHECK(transport->health().dead_letters == 0);
}
