// Names that become subjects in the event store and the relay are checked
// before anything is stored or published (issue 21): aggregate types and
// ids, event types, the prefix and the stream name; a commit another
// producer stored with an event type that cannot be a subject is parked by
// the relay, never published.
#include <doctest/doctest.h>
#include <nats/nats.h>

#include <string>

#include "catga/nats/jetstream_transport.hpp"
#include "es_test_support.hpp"
#include "raw_nats.hpp"
#include "wait_for.hpp"

using namespace catga::eventsourcing;
using namespace std::chrono_literals;

namespace {

std::uint64_t stream_messages(catga::test::RawNats& raw, const std::string& stream) {
  jsStreamInfo* info = nullptr;
  catga::test::check(js_GetStreamInfo(&info, raw.js(), stream.c_str(), nullptr, nullptr), "stream info " + stream);
  const std::uint64_t n = info->State.Msgs;
  jsStreamInfo_Destroy(info);
  return n;
}

bool refused(const catga::Error& e) { return e.code == catga::errc::validation; }

EventData typed(std::string type) { return EventData{std::move(type), 0, nlohmann::json{{"amount", 1}}}; }

}  // namespace

TEST_CASE("an aggregate id or event type that cannot be a subject is refused by append; nothing is stored") {
  catga::test::NatsServer server;
  auto store = est::store_on(est::connect(server));
  catga::test::RawNats raw(server.url());
  const auto stream = store->options().stream_name();

  for (const char* id : {"A*", "*", ">", "A>", "A 1", "a..b", "a.b", "", "$JS", "A\r\n1"}) {
    INFO("aggregate id: ", id);
    auto r = store->append({"Account", id}, Position{}, {EventData::of(est::Deposited{1})});
    REQUIRE_FALSE(r);
    CHECK(refused(r.error()));
    auto t = store->append({id, "A-1"}, Position{}, {EventData::of(est::Deposited{1})});
    REQUIRE_FALSE(t);
    CHECK(refused(t.error()));
  }
  for (const char* type : {"Deposited*", "*", ">", "Deposited.>", "Deposited Now", "a..b", ".a", "a.", "",
                           "$JS.API.STREAM.LIST", "Deposited\r\nPUB x 1"}) {
    INFO("event type: ", type);
    auto r = store->append({"Account", "A-1"}, Position{}, {EventData::of(est::Deposited{1}), typed(type)});
    REQUIRE_FALSE(r);
    CHECK(refused(r.error()));
    CHECK(r.error().message.find("cannot be used in a NATS subject") != std::string::npos);
    CHECK(r.error().message.find("Account.A-1") != std::string::npos);
  }
  CHECK(stream_messages(raw, stream) == 0);

  REQUIRE(store->append({"Account", "A-1"}, Position{}, {EventData::of(est::Deposited{1}), typed("shop.Deposited")}));
  CHECK(stream_messages(raw, stream) == 1);
}

TEST_CASE("an event-store prefix or stream name that cannot be a subject is refused at create") {
  catga::test::NatsServer server;
  auto conn = est::connect(server);
  for (const char* prefix : {"shop..eu", "shop*", ">", "sh op", "$shop", ".shop"}) {
    INFO("prefix: ", prefix);
    auto o = est::memory_store();
    o.prefix = prefix;
    o.stream.name = "ES_PREFIX_TEST";
    auto s = EventStore::create(conn, o);
    REQUIRE_FALSE(s);
    CHECK(refused(s.error()));
  }
  for (const char* name : {"ES.X", "ES*", "ES>", "MY ES", "$ES"}) {
    INFO("stream: ", name);
    auto o = est::memory_store();
    o.stream.name = name;
    o.provision = false;  // nothing the server could refuse for us
    auto s = EventStore::create(conn, o);
    REQUIRE_FALSE(s);
    CHECK(refused(s.error()));
    CHECK(s.error().message.find("stream name") != std::string::npos);
  }
}

TEST_CASE("a relay name or events prefix that cannot be a subject is refused at start") {
  catga::test::NatsServer server;
  auto store = est::store_on(est::connect(server));
  for (const char* name : {"a.b", "a b", "a*", ">", "", "$x"}) {
    INFO("name: ", name);
    EventRelayOptions o;
    o.name = name;
    auto r = EventRelay::start(store, o);
    REQUIRE_FALSE(r);
    CHECK(refused(r.error()));
  }
  for (const char* prefix : {"shop..eu", "shop*", "sh op", "$shop"}) {
    INFO("events prefix: ", prefix);
    EventRelayOptions o;
    o.events_prefix = prefix;
    auto r = EventRelay::start(store, o);
    REQUIRE_FALSE(r);
    CHECK(refused(r.error()));
  }
}

TEST_CASE("the relay parks a stored commit whose event type cannot be a subject, publishes nothing of it, and goes on") {
  catga::test::NatsServer server;
  auto conn = est::connect(server);
  auto transport = est::memory_transport(conn);  // CATGA_EVENTS, CATGA_DLQ
  auto store = est::store_on(conn);
  catga::test::RawNats raw(server.url());
  auto relay = EventRelay::start(store).value();

  auto append = [&](const char* id) {
    const StreamId s{"Account", id};
    REQUIRE(store->append(s, Position{}, {EventData::of(est::Deposited{1})}));
  };
  append("R-1");
  // Written by another producer: event types the store's append would refuse.
  for (const char* bad : {"Deposited.>", "Bad Type"}) {
    const StreamId s{"Account", std::string("R-") + (bad[0] == 'D' ? "2" : "3")};
    std::string body = est::deposit_commit(s, 1, {5}, std::string("foreign-") + s.id);
    const auto at = body.find("\"Deposited\"");
    REQUIRE(at != std::string::npos);
    body.replace(at, 11, std::string("\"") + bad + "\"");
    est::raw_store(raw, s, body, {{"Catga-Es-Version", "1"}});
  }
  append("R-4");

  const bool parked =
      catga::test::wait_for([&] { return relay->health().dead_lettered == 2 && relay->lag().value_or(1) == 0; }, 15s);
  CHECK(parked);
  CHECK(relay->published() == 2);
  CHECK(stream_messages(raw, "CATGA_EVENTS") == 2);  // only
  CHECK(relay->health().last_error.find("cannot be used in a NATS subject") != std::string::npos);
}
