// Streams and consumers: created once, checked afterwards, never silently changed.
#include <doctest/doctest.h>

#include <mutex>
#include <thread>
#include <vector>

#include "nats_server.hpp"
#include "raw_nats.hpp"
#include "stream_reader.hpp"
#include "test_messages.hpp"

using namespace std::chrono_literals;
using catga::test::check;

namespace {

void add_stream(catga::test::RawNats& raw, const char* name, const char* subject, jsStorageType storage,
                std::int64_t max_age_ns = 0) {
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = name;
  const char* subjects[] = {subject};
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = storage;
  cfg.MaxAge = max_age_ns;
  jsErrCode jerr{};
  check(js_AddStream(nullptr, raw.js(), &cfg, nullptr, &jerr), std::string("add stream ") + name);
}

catga::Error create_error(const catga::test::NatsServer& server, catga::nats::JetStreamOptions js) {
  js.startup_timeout = 5s;
  auto t = catga::nats::JetStreamTransport::create(nt::nats_options(server), std::move(js));
  REQUIRE_FALSE(t);
  return t.error();
}

}  // namespace

TEST_CASE("provisioning twice, from two instances, is harmless") {
  catga::test::NatsServer server;
  auto a = nt::make_transport(server, nt::js_options(), "a");
  auto b = nt::make_transport(server, nt::js_options(), "b");
  CHECK(a->ensure_streams());
  CHECK(b->ensure_streams());
  catga::Mediator m;
  m.attach(*a);
  REQUIRE(m.publish(nt::OrderPlaced{"x", 1}));
  auto c = nt::make_transport(server, nt::js_options(), "c");  // an existing stream with messages
  catga::test::RawNats raw(server.url());
  CHECK(nt::stream_count(raw, "CATGA_EVENTS") == 1);
}

TEST_CASE("instances starting at the same moment all provision the streams (a racing create is not an overlap)") {
  // Seen in a clean-clone run: six sample processes starting together, one
  // failed with "cannot create stream 'CATGA_DLQ': its subjects overlap
  // another stream's" — the other stream was the same one, created a moment
  // earlier by another instance (nats-server answers 10065, not 10058).
  int failed = 0;
  std::string first_error;
  for (int round = 0; round < 20 && failed == 0; ++round) {
    catga::test::NatsServer server;
    std::vector<std::thread> starters;
    std::mutex mu;
    for (int i = 0; i < 8; ++i) {
      starters.emplace_back([&, i] {
        auto t = catga::nats::JetStreamTransport::create(nt::nats_options(server), catga::nats::JetStreamOptions{});
        if (!t) {
          std::lock_guard lock(mu);
          if (failed++ == 0) first_error = t.error().message;
        }
        (void)i;
      });
    }
    for (auto& t : starters) t.join();
  }
  CHECK_MESSAGE(failed == 0, first_error);
}

TEST_CASE("an existing stream with another configuration is an error naming the field") {
  catga::test::NatsServer server;
  catga::test::RawNats raw(server.url());
  SUBCASE("storage") {
    add_stream(raw, "CATGA_EVENTS", "catga.evt.>", js_FileStorage);
    auto e = create_error(server, nt::js_options());  // asks for memory
    CHECK(e.code == "conflict");
    CHECK(e.message.find("storage") != std::string::npos);
    CHECK(e.message.find("CATGA_EVENTS") != std::string::npos);
    // Never updated behind the operator's back.
    jsStreamInfo* si = nullptr;
    jsErrCode jerr{};
    REQUIRE(js_GetStreamInfo(&si, raw.js(), "CATGA_EVENTS", nullptr, &jerr) == NATS_OK);
    CHECK(si->Config->Storage == js_FileStorage);
    jsStreamInfo_Destroy(si);
  }
  SUBCASE("subjects") {
    add_stream(raw, "CATGA_EVENTS", "catga.evt.orders.>", js_MemoryStorage);
    auto e = create_error(server, nt::js_options());
    CHECK(e.code == "conflict");
    CHECK(e.message.find("subjects") != std::string::npos);
  }
  SUBCASE("max age") {
    add_stream(raw, "CATGA_EVENTS", "catga.evt.>", js_MemoryStorage, std::chrono::nanoseconds(1h).count());
    auto e = create_error(server, nt::js_options());
    CHECK(e.message.find("max_age") != std::string::npos);
  }
  SUBCASE("a dead-letter stream too") {
    add_stream(raw, "CATGA_DLQ", "catga.dlq.>", js_FileStorage);
    auto e = create_error(server, nt::js_options());
    CHECK(e.message.find("CATGA_DLQ") != std::string::npos);
    CHECK(e.message.find("storage") != std::string::npos);
  }
  SUBCASE("another stream already owns the subjects") {
    add_stream(raw, "SOMEONE_ELSE", "catga.evt.>", js_MemoryStorage);
    auto e = create_error(server, nt::js_options());
    CHECK(e.code == "conflict");
    CHECK(e.message.find("overlap") != std::string::npos);
  }
}

TEST_CASE("the prefix and stream names are configurable") {
  catga::test::NatsServer server;
  auto js = nt::js_options("shop");
  auto t = nt::make_transport(server, js);
  catga::Mediator m;
  m.attach(*t);
  REQUIRE(m.publish(nt::OrderPlaced{"p", 1}));
  catga::test::RawNats raw(server.url());
  auto stored = nt::read_stream(raw, "SHOP_EVENTS");
  REQUIRE(stored.size() == 1);
  CHECK(stored[0].subject == "shop.evt.OrderPlaced");
  CHECK(nt::stream_count(raw, "SHOP_DLQ") == 0);

  auto named = nt::js_options("billing");
  named.events.name = "BILLING_STREAM";
  named.dead_letters.name = "BILLING_DEAD";
  auto t2 = nt::make_transport(server, named);
  CHECK(t2->options().events_stream() == "BILLING_STREAM");
  CHECK(nt::stream_count(raw, "BILLING_DEAD") == 0);
  jsStreamInfo* si = nullptr;
  jsErrCode jerr{};
  REQUIRE(js_GetStreamInfo(&si, raw.js(), "BILLING_STREAM", nullptr, &jerr) == NATS_OK);
  CHECK(std::string(si->Config->Subjects[0]) == "billing.evt.>");
  jsStreamInfo_Destroy(si);
}

TEST_CASE("an existing durable consumer of the group with another filter is an error") {
  catga::test::NatsServer server;
  auto t = nt::make_transport(server);
  catga::test::RawNats raw(server.url());
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = "billing_OrderPlaced";
  cc.AckPolicy = js_AckExplicit;
  cc.FilterSubject = "catga.evt.Other";
  jsErrCode jerr{};
  check(js_AddConsumer(nullptr, raw.js(), "CATGA_EVENTS", &cc, nullptr, &jerr), "add consumer");
  catga::Mediator m;
  m.attach(*t);
  auto sub = m.subscribe<nt::OrderPlaced>(nt::group("billing"), [](const nt::OrderPlaced&) {});
  REQUIRE_FALSE(sub);
  CHECK(sub.error().code == "conflict");
  CHECK(sub.error().message.find("filter subject") != std::string::npos);
}

TEST_CASE("without provisioning the streams must exist") {
  catga::test::NatsServer server;
  auto js = nt::js_options();
  js.provision = false;
  auto t = nt::make_transport(server, js);
  catga::Mediator m;
  m.attach(*t);
  auto ctx = catga::Context::root();
  ctx.deadline = std::chrono::steady_clock::now() + 300ms;
  auto s = m.publish(nt::OrderPlaced{"x", 1}, ctx);
  REQUIRE_FALSE(s);
  CHECK(s.error().code == "unavailable");
  CHECK_FALSE(t->health().stream_reachable);
}
