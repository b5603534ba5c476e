// Projections and the relay never skip a commit silently, with default
// options:
// - a delivery the projection never received (taken here by a "thief" pull
//   request on its consumer, as when a consumer leader dies mid-delivery) is
//   applied in stream order, not passed over when it is redelivered later;
// - the consumer deleted behind the projection's back (its inactivity
//   threshold, an operator) is created again from the checkpoint;
// - a commit that does not decode is parked in the dead-letter stream and
//   counted, by the projection and by the relay;
// - a second commit claiming a version already applied (a double append let
//   through by the server) is not applied to the read model.
#include <doctest/doctest.h>
#include <nats/nats.h>

#include <filesystem>
#include <set>
#include <thread>
#include <sqlite3.h>

#include "catga/nats/jetstream_transport.hpp"
#include "es_test_support.hpp"
#include "raw_nats.hpp"
#include "read_model.hpp"
#include "wait_for.hpp"

using namespace catga::eventsourcing;
using namespace std::chrono_literals;

namespace {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char t[] = "/tmp/catga-esf-XXXXXX";
    path = mkdtemp(t);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& n) const { return (path / n).string(); }
};

std::uint64_t deposit(EventStore& store, const std::string& account, std::int64_t amount) {
  const StreamId s{"Account", account};
  return store.append(s, store.last(s).value(), {EventData::of(est::Deposited{amount})}).value().position.sequence;
}

// The sequences the read model applied, in order.
std::vector<std::uint64_t> applied_log(const std::string& db_path) {
  std::vector<std::uint64_t> out;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(db, 2'000);
    sqlite3_stmt* q = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT seq FROM applied_log ORDER BY rowid", -1, &q, nullptr) == SQLITE_OK) {
      while (sqlite3_step(q) == SQLITE_ROW) out.push_back(static_cast<std::uint64_t>(sqlite3_column_int64(q, 0)));
    }
    sqlite3_finalize(q);
  }
  sqlite3_close(db);
  return out;
}

std::int64_t balance(const std::string& db_path, const std::string& account) {
  std::int64_t out = -1;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(db, 2'000);
    sqlite3_stmt* q = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT balance FROM balances WHERE id = ?1", -1, &q, nullptr) == SQLITE_OK) {
      sqlite3_bind_text(q, 1, account.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(q) == SQLITE_ROW) out = sqlite3_column_int64(q, 0);
    }
    sqlite3_finalize(q);
  }
  sqlite3_close(db);
  return out;
}

// The last dead letter stored on `subject`, with its headers; empty when none.
struct StoredLetter {
  std::uint64_t sequence = 0;
  std::string consumer, original_seq, error_code;
};
StoredLetter last_dead_letter(catga::test::RawNats& raw, const std::string& subject) {
  StoredLetter out;
  natsMsg* m = nullptr;
  if (js_GetLastMsg(&m, raw.js(), "CATGA_DLQ", subject.c_str(), nullptr, nullptr) != NATS_OK) return out;
  out.sequence = natsMsg_GetSequence(m);
  const char* v = nullptr;
  if (natsMsgHeader_Get(m, "Catga-Es-Consumer", &v) == NATS_OK) out.consumer = v;
  if (natsMsgHeader_Get(m, "Catga-Original-Seq", &v) == NATS_OK) out.original_seq = v;
  if (natsMsgHeader_Get(m, "Catga-Error-Code", &v) == NATS_OK) out.error_code = v;
  natsMsg_Destroy(m);
  return out;
}

}  // namespace

TEST_CASE("a delivery the projection never received is applied in order, not skipped when redelivered") {
  catga::test::NatsServer server;
  TempDir dir;
  auto store = est::store_on(est::connect(server));
  catga::test::RawNats thief(server.url());
  const std::string db = dir.file("p.db");
  auto p = SqliteProjection::start(store, {.name = "lost", .database = db}, est::balance_model()).value();

  std::vector<std::uint64_t> written{deposit(*store, "L-0", 1)};
  REQUIRE(catga::test::wait_for([&] { return p->checkpoint() == written.back(); }, 30s));

  // A pull request of its own on the projection's consumer: the server
  // shares deliveries between open requests, so it takes one of the next
  // commits, which the projection never sees (as when the delivery was lost
  // with a crashed consumer leader) and which is redelivered only after
  // ack_wait (30 s by default).
  natsSubscription* sub = nullptr;
  catga::test::check(natsConnection_SubscribeSync(&sub, thief.nc(), "thief.inbox"), "subscribe");
  const std::string next = "$JS.API.CONSUMER.MSG.NEXT.CATGA_ES.es_proj_lost";
  const std::string req = R"({"batch":1,"expires":60000000000})";
  catga::test::check(natsConnection_PublishRequest(thief.nc(), next.c_str(), "thief.inbox", req.data(),
                                                   static_cast<int>(req.size())),
                     "pull");
  catga::test::check(natsConnection_Flush(thief.nc()), "flush");
  std::uint64_t stolen = 0;
  for (int i = 1; i <= 40 && stolen == 0; ++i) {
    written.push_back(deposit(*store, "L-" + std::to_string(i), 1));
    natsMsg* m = nullptr;
    if (natsSubscription_NextMsg(&m, sub, 50) == NATS_OK) {
      if (natsMsg_GetReply(m) != nullptr) stolen = written.back();  // not acked, ever
      natsMsg_Destroy(m);
    }
  }
  REQUIRE_MESSAGE(stolen != 0, "the server never shared a delivery with the second pull request");
  // Commits after the stolen one, so the projection meets the gap.
  for (int i = 0; i < 5; ++i) written.push_back(deposit(*store, "M-" + std::to_string(i), 1));

  const bool complete = catga::test::wait_for([&] { return p->checkpoint() == written.back(); }, 45s) &&
                        catga::test::wait_for([&] { return applied_log(db).size() >= written.size(); }, 45s);
  INFO("stolen #" << stolen << ", written up to #" << written.back());
  CHECK(complete);
  CHECK(applied_log(db) == written);  // each once, in stream order, the stolen one included
  CHECK(p->health().repositioned >= 1);
  natsSubscription_Destroy(sub);
}

TEST_CASE("a projection whose consumer was deleted creates it again from its checkpoint; the consumer expires") {
  catga::test::NatsServer server;
  TempDir dir;
  auto store = est::store_on(est::connect(server));
  catga::test::RawNats raw(server.url());
  const std::string db = dir.file("p.db");
  auto p = SqliteProjection::start(store, {.name = "gone", .database = db}, est::balance_model()).value();
  std::vector<std::uint64_t> written;
  for (int i = 0; i < 3; ++i) written.push_back(deposit(*store, "G-" + std::to_string(i), 2));
  REQUIRE(catga::test::wait_for([&] { return p->checkpoint() == written.back(); }, 30s));

  // The default inactivity threshold is set on the consumer.
  jsConsumerInfo* ci = nullptr;
  catga::test::check(js_GetConsumerInfo(&ci, raw.js(), "CATGA_ES", "es_proj_gone", nullptr, nullptr), "consumer info");
  CHECK(ci->Config->InactiveThreshold == std::chrono::nanoseconds(10min).count());
  jsConsumerInfo_Destroy(ci);

  // Deleted behind its back (e.g. the threshold passed while the process was
  // stopped): the projection goes on from its checkpoint.
  catga::test::check(js_DeleteConsumer(raw.js(), "CATGA_ES", "es_proj_gone", nullptr, nullptr), "delete consumer");
  for (int i = 3; i < 8; ++i) written.push_back(deposit(*store, "G-" + std::to_string(i), 2));
  CHECK(catga::test::wait_for([&] { return p->checkpoint() == written.back(); }, 30s));
  CHECK(applied_log(db) == written);
  p.reset();

  // A replica gone for good leaves no consumer behind.
  auto q = SqliteProjection::start(store, {.name = "brief", .database = dir.file("q.db"), .inactive_threshold = 1s},
                                   est::balance_model())
               .value();
  REQUIRE(catga::test::wait_for([&] { return q->checkpoint() == written.back(); }, 30s));
  q->stop();
  CHECK(catga::test::wait_for(
      [&] {
        jsConsumerInfo* gone = nullptr;
        const natsStatus s = js_GetConsumerInfo(&gone, raw.js(), "CATGA_ES", "es_proj_brief", nullptr, nullptr);
        if (s == NATS_OK) jsConsumerInfo_Destroy(gone);
        return s == NATS_NOT_FOUND;
      },
      30s));
}

TEST_CASE("a commit that does not decode is dead-lettered by the projection and by the relay, and both go on") {
  catga::test::NatsServer server;
  TempDir dir;
  auto conn = est::connect(server);
  auto transport = catga::nats::JetStreamTransport::create(conn).value();  // provisions CATGA_DLQ
  auto store = est::store_on(conn);
  catga::test::RawNats raw(server.url());
  const std::string db = dir.file("p.db");
  auto p = SqliteProjection::start(store, {.name = "bad", .database = db}, est::balance_model()).value();
  auto relay = EventRelay::start(store).value();

  const auto before = deposit(*store, "B-1", 5);
  const auto broken = est::raw_store(raw, StreamId{"Account", "B-2"}, "{\"stream\":\"Account.B-2\",\"events\":[{",
                                     {{"Catga-Es-Version", "1"}});
  const auto after = deposit(*store, "B-3", 7);

  REQUIRE(catga::test::wait_for([&] { return p->checkpoint() == after; }, 30s));
  CHECK(applied_log(db) == std::vector<std::uint64_t>{before, after});
  const auto ph = p->health();
  CHECK(ph.dead_lettered == 1);
  CHECK(ph.last_error.find("#" + std::to_string(broken)) != std::string::npos);
  REQUIRE(catga::test::wait_for([&] { return relay->health().dead_lettered == 1 && relay->lag().value_or(1) == 0; }, 30s));

  // Two copies (one per consumer), each naming its consumer and the commit.
  std::set<std::string> consumers;
  natsMsg* m = nullptr;
  for (std::uint64_t seq = 1; seq <= 4; ++seq) {
    if (js_GetMsg(&m, raw.js(), "CATGA_DLQ", seq, nullptr, nullptr) != NATS_OK) continue;
    CHECK(std::string(natsMsg_GetSubject(m)) == "catga.dlq.es.Account");
    const char* v = nullptr;
    REQUIRE(natsMsgHeader_Get(m, "Catga-Es-Consumer", &v) == NATS_OK);
    consumers.insert(v);
    REQUIRE(natsMsgHeader_Get(m, "Catga-Original-Seq", &v) == NATS_OK);
    CHECK(std::string(v) == std::to_string(broken));
    REQUIRE(natsMsgHeader_Get(m, "Catga-Error-Code", &v) == NATS_OK);
    CHECK(std::string(v) == "malformed");
    natsMsg_Destroy(m);
  }
  CHECK(consumers == std::set<std::string>{"es_proj_bad", "es_relay_events"});
  const auto last = last_dead_letter(raw, "catga.dlq.es.Account");
  CHECK(last.original_seq == std::to_string(broken));
}

TEST_CASE("a projection does not apply a second commit claiming a version it already applied") {
  catga::test::NatsServer server;
  TempDir dir;
  auto store = est::store_on(est::connect(server));
  catga::test::RawNats raw(server.url());
  const std::string db = dir.file("p.db");
  auto p = SqliteProjection::start(store, {.name = "twice", .database = db}, est::balance_model()).value();

  const StreamId acc{"Account", "D-1"};
  const auto first = deposit(*store, "D-1", 10);
  // The racer: version 1 again, stored without the expected-sequence check.
  const auto dup = est::raw_store(raw, acc, est::deposit_commit(acc, 1, {1000}, "racer"), {{"Catga-Es-Version", "1"}});
  const auto next = store->append(acc, store->read_stream(acc).value().end, {EventData::of(est::Deposited{5})});
  REQUIRE(next);

  REQUIRE(catga::test::wait_for([&] { return p->checkpoint() == next->position.sequence; }, 30s));
  CHECK(balance(db, "D-1") == 15);  // 10 + 5, never the racer's 1000
  CHECK(applied_log(db) == std::vector<std::uint64_t>{first, next->position.sequence});
  CHECK(p->health().ignored == 1);
  CHECK(dup > first);

  // A rebuild applies the same: the rule does not depend on what was seen before.
  REQUIRE(p->rebuild());
  REQUIRE(catga::test::wait_for(
      [&] { return p->checkpoint() == next->position.sequence && applied_log(db).size() == 2; }, 30s));
  CHECK(balance(db, "D-1") == 15);
}

TEST_CASE("while a bad commit cannot be dead-lettered the projection stops before it, then goes on") {
  catga::test::NatsServer server;
  TempDir dir;
  auto conn = est::connect(server);
  auto store = est::store_on(conn);  // no dead-letter stream yet
  catga::test::RawNats raw(server.url());
  const std::string db = dir.file("p.db");
  auto p = SqliteProjection::start(store, {.name = "held", .database = db}, est::balance_model()).value();

  const auto before = deposit(*store, "H-1", 5);
  const auto broken = est::raw_store(raw, StreamId{"Account", "H-2"}, "not a commit", {{"Catga-Es-Version", "1"}});
  const auto after = deposit(*store, "H-3", 7);
  REQUIRE(catga::test::wait_for([&] { return p->checkpoint() == before; }, 30s));
  REQUIRE(catga::test::wait_for(
      [&] { return p->health().last_error.find("could not be dead-lettered") != std::string::npos; }, 30s));
  std::this_thread::sleep_for(1s);
  CHECK(p->checkpoint() == before);  // neither the bad commit nor the one after it passed
  CHECK(p->health().dead_lettered == 0);

  auto transport = catga::nats::JetStreamTransport::create(conn).value();  // now there is one
  REQUIRE(catga::test::wait_for([&] { return p->checkpoint() == after; }, 30s));
  CHECK(applied_log(db) == std::vector<std::uint64_t>{before, after});
  CHECK(p->health().dead_lettered == 1);
  CHECK(last_dead_letter(raw, "catga.dlq.es.Account").original_seq == std::to_string(broken));
}
