// Consumer groups over durable pull consumers: load balancing, every group
// gets everything, retries with backoff, dead letters, in-progress, stop.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <cstring>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "nats_server.hpp"
#include "raw_nats.hpp"
#include "stream_reader.hpp"
#include "test_messages.hpp"
#include "wait_for.hpp"

using catga::test::wait_for;
using namespace std::chrono_literals;

namespace {

// One service instance: its own connection, transport and mediator.
struct Instance {
  explicit Instance(const catga::test::NatsServer& server, std::string name,
                    catga::nats::JetStreamOptions js = nt::js_options())
      : transport(nt::make_transport(server, std::move(js), std::move(name))) {
    mediator.attach(*transport);
  }
  std::unique_ptr<catga::nats::JetStreamTransport> transport;
  catga::Mediator mediator;
};

// Counts how often each id was handled.
struct Ledger {
  std::mutex mu;
  std::map<std::string, int> seen;
  std::atomic<int> total{0};
  void add(const std::string& id) {
    std::lock_guard lock(mu);
    ++seen[id];
    ++total;
  }
  int max_count() {
    std::lock_guard lock(mu);
    int m = 0;
    for (auto& [k, v] : seen) m = std::max(m, v);
    return m;
  }
  std::size_t distinct() {
    std::lock_guard lock(mu);
    return seen.size();
  }
};

bool group_settled(catga::nats::JetStreamTransport& t, const std::string& group) {
  for (const auto& c : t.health().consumers) {
    if (c.group == group && (!c.reachable || c.lag() != 0)) return false;
  }
  return true;
}

catga::Context with_id(const std::string& id) {
  auto ctx = catga::Context::root();
  ctx.message_id = *catga::MessageId::parse(id);
  return ctx;
}

}  // namespace

TEST_CASE("a group of 3 instances shares 3000 events, each handled once; a second group gets all of them") {
  catga::test::NatsServer server;
  std::vector<std::unique_ptr<Instance>> billing;
  std::vector<catga::Subscription> subs;
  Ledger ledger;
  std::array<std::atomic<int>, 3> per_instance{};
  for (int i = 0; i < 3; ++i) {
    billing.push_back(std::make_unique<Instance>(server, "billing-" + std::to_string(i)));
    auto s = billing.back()->mediator.subscribe<nt::OrderPlaced>(nt::group("billing", 2),
                                                                 [&, i](const nt::OrderPlaced& e) {
                                                                   per_instance[static_cast<std::size_t>(i)]++;
                                                                   ledger.add(e.order_id);
                                                                 });
    REQUIRE(s);
    subs.push_back(std::move(*s));
  }
  Instance audit(server, "audit");
  Ledger audit_ledger;
  auto audit_sub = audit.mediator.subscribe<nt::OrderPlaced>(
      nt::group("audit"), [&](const nt::OrderPlaced& e) { audit_ledger.add(e.order_id); });
  REQUIRE(audit_sub);

  Instance publisher(server, "publisher");
  constexpr int kEvents = 3000;
  for (int i = 0; i < kEvents; ++i) {
    REQUIRE(publisher.mediator.publish(nt::OrderPlaced{"o-" + std::to_string(i), i}));
  }

  REQUIRE(wait_for([&] { return ledger.total.load() >= kEvents && audit_ledger.total.load() >= kEvents; }, 60s));
  // Everything acked: nothing can come back as a redelivery.
  REQUIRE(wait_for([&] { return group_settled(*billing[0]->transport, "billing"); }, 30s));
  REQUIRE(wait_for([&] { return group_settled(*audit.transport, "audit"); }, 30s));
  CHECK(ledger.total.load() == kEvents);
  CHECK(ledger.distinct() == kEvents);
  CHECK(ledger.max_count() == 1);
  CHECK(audit_ledger.total.load() == kEvents);
  CHECK(audit_ledger.distinct() == kEvents);
  for (auto& n : per_instance) CHECK(n.load() > 0);
}

TEST_CASE("a failing handler is retried with the backoff of its policy, then succeeds") {
  catga::test::NatsServer server;
  Instance svc(server, "svc");
  std::mutex mu;
  std::vector<std::pair<int, std::chrono::steady_clock::time_point>> attempts;
  auto opts = nt::group("flaky");
  opts.retry.max_deliver = 5;
  opts.retry.backoff = {300ms, 600ms};
  auto sub = svc.mediator.subscribe<nt::OrderPlaced>(opts, [&](const nt::OrderPlaced&, catga::Context& ctx) -> catga::Status {
    std::lock_guard lock(mu);
    attempts.emplace_back(ctx.attempt, std::chrono::steady_clock::now());
    if (ctx.attempt < 3) return catga::make_error("busy", "try again", true);
    return {};
  });
  REQUIRE(sub);
  REQUIRE(svc.mediator.publish(nt::OrderPlaced{"f-1", 1}));
  REQUIRE(wait_for([&] {
    std::lock_guard lock(mu);
    return attempts.size() >= 3;
  }));
  REQUIRE(wait_for([&] { return group_settled(*svc.transport, "flaky"); }));
  std::lock_guard lock(mu);
  REQUIRE(attempts.size() == 3);
  CHECK(attempts[0].first == 1);
  CHECK(attempts[1].first == 2);
  CHECK(attempts[2].first == 3);
  // Lower bounds only: the nak delay is a minimum, a busy machine adds to it.
  CHECK(attempts[1].second - attempts[0].second >= 300ms);
  CHECK(attempts[2].second - attempts[1].second >= 600ms);
  CHECK(svc.transport->health().dead_letters == 0);
}

TEST_CASE("an always failing message is dead-lettered after max deliveries with the DLQ headers; the rest flows") {
  catga::test::NatsServer server;
  Instance svc(server, "svc");
  std::atomic<int> poison_attempts{0};
  std::atomic<int> fine{0};
  auto opts = nt::group("shipping", 2);
  opts.retry.max_deliver = 3;
  opts.retry.backoff = {50ms};
  auto sub = svc.mediator.subscribe<nt::OrderPlaced>(opts, [&](const nt::OrderPlaced& e) -> catga::Status {
    if (e.order_id == "poison") {
      poison_attempts++;
      return catga::make_error("carrier_down", "carrier API\r\nanswered 503", true);
    }
    if (e.order_id == "rejected") return catga::make_error("invalid_address", "no such street", false);
    fine++;
    return {};
  });
  REQUIRE(sub);
  auto ctx = with_id("poison-id-1");
  const auto correlation = ctx.correlation_id.text().str();
  ctx.headers.set("Tenant", "acme");
  REQUIRE(svc.mediator.publish(nt::OrderPlaced{"poison", 1}, ctx));
  REQUIRE(svc.mediator.publish(nt::OrderPlaced{"rejected", 2}, with_id("rejected-id-1")));
  for (int i = 0; i < 20; ++i) REQUIRE(svc.mediator.publish(nt::OrderPlaced{"ok-" + std::to_string(i), i}));

  catga::test::RawNats raw(server.url());
  REQUIRE(wait_for([&] { return fine.load() == 20 && nt::stream_count(raw, "CATGA_DLQ") == 2; }));
  REQUIRE(wait_for([&] { return group_settled(*svc.transport, "shipping"); }));
  CHECK(poison_attempts.load() == 3);

  auto dead = nt::read_stream(raw, "CATGA_DLQ");
  REQUIRE(dead.size() == 2);
  const auto& poison = dead[0].header("Catga-Error-Code") == "carrier_down" ? dead[0] : dead[1];
  const auto& rejected = dead[0].header("Catga-Error-Code") == "carrier_down" ? dead[1] : dead[0];
  CHECK(poison.subject == "catga.dlq.OrderPlaced");
  CHECK(poison.header("Catga-Error") == "carrier API  answered 503");  // CR/LF cannot travel in a header
  CHECK(poison.header("Catga-Deliveries") == "3");
  CHECK(poison.header("Catga-Original-Subject") == "catga.evt.OrderPlaced");
  CHECK(poison.header("Catga-Original-Seq") == "1");
  CHECK(poison.header("Catga-Group") == "shipping");
  CHECK(poison.header("Catga-Original-Msg-Id") == "poison-id-1");
  CHECK(poison.header("Catga-Type") == "OrderPlaced");
  CHECK(poison.header("Catga-Correlation-Id") == correlation);
  CHECK(poison.header("Tenant") == "acme");
  CHECK(poison.header("Content-Type") == "application/json");
  CHECK(poison.body == R"({"amount":1,"order_id":"poison"})");
  // Non-retryable: dead-lettered on the first delivery.
  CHECK(rejected.header("Catga-Deliveries") == "1");
  CHECK(rejected.header("Catga-Error") == "no such street");
  CHECK(rejected.header("Catga-Original-Seq") == "2");

  auto h = svc.transport->health();
  REQUIRE(h.consumers.size() == 1);
  CHECK(h.consumers[0].dead_lettered == 2);
  CHECK(h.consumers[0].handled == 20);
  CHECK(h.dead_letters == 2);
}

TEST_CASE("malformed, mistyped and header-less messages are dead-lettered without a crash") {
  catga::test::NatsServer server;
  Instance svc(server, "svc");
  std::atomic<int> handled{0};
  auto sub = svc.mediator.subscribe<nt::OrderPlaced>(nt::group("billing"), [&](const nt::OrderPlaced&) { handled++; });
  REQUIRE(sub);

  catga::test::RawNats raw(server.url());
  auto publish_raw = [&](const char* body, std::vector<std::pair<const char*, const char*>> headers) {
    natsMsg* m = nullptr;
    catga::test::check(natsMsg_Create(&m, "catga.evt.OrderPlaced", nullptr, body, static_cast<int>(std::strlen(body))),
                       "msg");
    for (auto& [k, v] : headers) natsMsgHeader_Set(m, k, v);
    jsErrCode jerr{};
    catga::test::check(js_PublishMsg(nullptr, raw.js(), m, nullptr, &jerr), "publish raw");
    natsMsg_Destroy(m);
  };
  publish_raw("{not json", {{"Nats-Msg-Id", "bad-json"}, {"Catga-Type", "OrderPlaced"}});
  publish_raw(R"({"order_id":"x","amount":1})", {{"Nats-Msg-Id", "other-type"}, {"Catga-Type", "RefundIssued"}});
  publish_raw(R"({"order_id":"x","amount":1})", {});
  publish_raw(R"({"amount":"not a number"})", {{"Nats-Msg-Id", "bad-shape"}, {"Catga-Type", "OrderPlaced"}});
  REQUIRE(svc.mediator.publish(nt::OrderPlaced{"good", 1}));

  REQUIRE(wait_for([&] { return handled.load() == 1 && nt::stream_count(raw, "CATGA_DLQ") == 4; }));
  std::multiset<std::string> codes;
  for (const auto& d : nt::read_stream(raw, "CATGA_DLQ")) {
    codes.insert(d.header("Catga-Error-Code"));
    CHECK(d.header("Catga-Deliveries") == "1");
    CHECK(d.header("Catga-Error") != "<absent>");
  }
  CHECK(codes == std::multiset<std::string>{"malformed", "malformed", "malformed", "unknown_type"});
}

TEST_CASE("a handler running longer than ack_wait is kept alive with in-progress signals") {
  catga::test::NatsServer server;
  auto js = nt::js_options();
  js.consumer.ack_wait = 1s;
  js.consumer.in_progress_interval = 200ms;
  Instance svc(server, "svc", js);
  std::atomic<int> calls{0};
  std::atomic<int> max_attempt{0};
  auto sub = svc.mediator.subscribe<nt::OrderPlaced>(nt::group("slow"), [&](const nt::OrderPlaced&, catga::Context& ctx) {
    calls++;
    max_attempt = std::max(max_attempt.load(), ctx.attempt);
    std::this_thread::sleep_for(2500ms);  // the work itself: 2.5 x ack_wait
  });
  REQUIRE(sub);
  REQUIRE(svc.mediator.publish(nt::OrderPlaced{"long", 1}));
  REQUIRE(wait_for([&] { return calls.load() >= 1; }));
  REQUIRE(wait_for([&] { return group_settled(*svc.transport, "slow"); }));
  CHECK(calls.load() == 1);
  CHECK(max_attempt.load() == 1);
}

TEST_CASE("a dead-letter copy that cannot be stored leaves the message in the stream until it can") {
  catga::test::NatsServer server;
  auto js = nt::js_options();
  js.provision = false;  // no dead-letter stream yet
  {
    catga::test::RawNats raw(server.url());
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = "CATGA_EVENTS";
    const char* subjects[] = {"catga.evt.>"};
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_MemoryStorage;
    jsErrCode jerr{};
    catga::test::check(js_AddStream(nullptr, raw.js(), &cfg, nullptr, &jerr), "add events stream");
  }
  js.consumer.dead_letter_timeout = 300ms;
  Instance svc(server, "svc", js);
  std::atomic<int> calls{0};
  auto opts = nt::group("g");
  opts.retry.max_deliver = 1;
  opts.retry.backoff = {100ms};
  auto sub = svc.mediator.subscribe<nt::OrderPlaced>(opts, [&](const nt::OrderPlaced&) -> catga::Status {
    calls++;
    return catga::make_error("rejected", "never", false);
  });
  REQUIRE(sub);
  REQUIRE(svc.mediator.publish(nt::OrderPlaced{"keep-me", 1}));
  REQUIRE(wait_for([&] { return calls.load() >= 1; }));
  // Redelivered (nak) while the copy fails; still not acked or terminated.
  REQUIRE(wait_for([&] {
    auto h = svc.transport->health();
    return !h.consumers.empty() && h.consumers[0].num_redelivered >= 1;
  }));
  CHECK(svc.transport->health().consumers[0].dead_lettered == 0);
  REQUIRE(svc.transport->ensure_streams());  // the DLQ appears
  catga::test::RawNats raw(server.url());
  REQUIRE(wait_for([&] { return nt::stream_count(raw, "CATGA_DLQ") == 1; }));
  REQUIRE(wait_for([&] { return group_settled(*svc.transport, "g"); }));
  auto dead = nt::read_stream(raw, "CATGA_DLQ");
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].body == R"({"amount":1,"order_id":"keep-me"})");
  CHECK(calls.load() == 1);  // later deliveries exceed max_deliver: copied, not handled again
}

TEST_CASE("stopping an instance with messages in flight loses nothing and handles nothing twice") {
  catga::test::NatsServer server;
  auto js = nt::js_options();
  js.consumer.ack_wait = 3s;  // bounds the wait should anything be left unacked
  js.consumer.batch = 16;
  Instance a(server, "a", js);
  Instance b(server, "b", js);
  Ledger ledger;
  std::atomic<int> a_calls{0};
  auto slow = [&](const nt::OrderPlaced& e) {
    a_calls++;
    std::this_thread::sleep_for(5ms);
    ledger.add(e.order_id);
  };
  auto sub_a = a.mediator.subscribe<nt::OrderPlaced>(nt::group("workers", 2), slow);
  REQUIRE(sub_a);
  Instance publisher(server, "publisher", js);
  constexpr int kEvents = 400;
  for (int i = 0; i < kEvents; ++i) REQUIRE(publisher.mediator.publish(nt::OrderPlaced{"s-" + std::to_string(i), i}));
  REQUIRE(wait_for([&] { return a_calls.load() >= 20; }));
  auto sub_b = b.mediator.subscribe<nt::OrderPlaced>(nt::group("workers", 2), [&](const nt::OrderPlaced& e) {
    ledger.add(e.order_id);
  });
  REQUIRE(sub_b);
  // Stop A in the middle of its work: received messages are finished and acked.
  REQUIRE(a.transport->stop(10s));
  const int handled_by_a = a_calls.load();
  CHECK(handled_by_a < kEvents);
  REQUIRE(wait_for([&] { return ledger.total.load() >= kEvents; }, 60s));
  REQUIRE(wait_for([&] { return group_settled(*b.transport, "workers"); }, 30s));
  CHECK(ledger.distinct() == kEvents);
  CHECK(ledger.max_count() == 1);
  CHECK(ledger.total.load() == kEvents);
  CHECK(a_calls.load() == handled_by_a);  // nothing ran on A after stop
}

TEST_CASE("a subscription stopped and started again resumes where the group left off") {
  catga::test::NatsServer server;
  Instance svc(server, "svc");
  Ledger ledger;
  auto handler = [&](const nt::OrderPlaced& e) { ledger.add(e.order_id); };
  auto sub = svc.mediator.subscribe<nt::OrderPlaced>(nt::group("resume"), handler);
  REQUIRE(sub);
  for (int i = 0; i < 10; ++i) REQUIRE(svc.mediator.publish(nt::OrderPlaced{"r-" + std::to_string(i), i}));
  REQUIRE(wait_for([&] { return ledger.total.load() == 10; }));
  sub->stop();
  for (int i = 10; i < 20; ++i) REQUIRE(svc.mediator.publish(nt::OrderPlaced{"r-" + std::to_string(i), i}));
  auto again = svc.mediator.subscribe<nt::OrderPlaced>(nt::group("resume"), handler);
  REQUIRE(again);
  REQUIRE(wait_for([&] { return ledger.total.load() == 20; }));
  REQUIRE(wait_for([&] { return group_settled(*svc.transport, "resume"); }));
  CHECK(ledger.distinct() == 20);
  CHECK(ledger.max_count() == 1);
}

TEST_CASE("a handler may stop its own subscription") {
  catga::test::NatsServer server;
  Instance svc(server, "svc");
  std::atomic<int> calls{0};
  catga::Subscription sub;
  std::mutex mu;
  auto s = svc.mediator.subscribe<nt::OrderPlaced>(nt::group("once"), [&](const nt::OrderPlaced&) {
    calls++;
    std::lock_guard lock(mu);
    sub.stop();  // returns at once; the rest of the stop happens after this handler
  });
  REQUIRE(s);
  {
    std::lock_guard lock(mu);
    sub = std::move(*s);
  }
  for (int i = 0; i < 5; ++i) REQUIRE(svc.mediator.publish(nt::OrderPlaced{"x", i}));
  REQUIRE(wait_for([&] { return calls.load() >= 1 && svc.transport->health().consumers.empty(); }));
  catga::test::RawNats raw(server.url());
  auto consumer = [&](auto&& read) {
    jsConsumerInfo* ci = nullptr;
    jsErrCode jerr{};
    if (js_GetConsumerInfo(&ci, raw.js(), "CATGA_EVENTS", "once_OrderPlaced", nullptr, &jerr) != NATS_OK) return false;
    const bool r = read(*ci);
    jsConsumerInfo_Destroy(ci);
    return r;
  };
  // What was already fetched is finished (graceful stop) or handed back; once
  // nothing is in flight every handler call has returned (acks follow them).
  // The stop ends when its open pull requests have run out at the server
  // (it leaves none behind): from then on nothing is fetched.
  REQUIRE(wait_for([&] {
    return consumer([](const jsConsumerInfo& ci) { return ci.NumAckPending == 0 && ci.NumWaiting == 0; });
  }));
  const int seen = calls.load();
  // Later events stay in the stream for the group: nobody fetches them.
  for (int i = 0; i < 3; ++i) REQUIRE(svc.mediator.publish(nt::OrderPlaced{"later", i}));
  REQUIRE(wait_for([&] { return consumer([](const jsConsumerInfo& ci) { return ci.NumPending >= 3; }); }));
  CHECK(calls.load() == seen);
}

TEST_CASE("stopping a subscription while the server does not answer ends at its deadline; nothing is lost") {
  catga::test::NatsServer server;
  auto js = nt::js_options();
  js.stop_timeout = 1s;
  Instance svc(server, "svc", js);
  std::atomic<int> handled{0};
  auto sub = svc.mediator.subscribe<nt::OrderPlaced>(nt::group("frozen"), [&](const nt::OrderPlaced&) { ++handled; });
  REQUIRE(sub);
  REQUIRE(svc.mediator.publish(nt::OrderPlaced{"before", 1}));
  REQUIRE(wait_for([&] { return handled.load() == 1; }));

  // A frozen server never confirms the drain of the pull inbox: stop gives
  // up at its deadline, and the inbox subscription is kept until the
  // connection closes (nats.c 3.4.1 may still deliver to it).
  REQUIRE(::kill(server.pid(), SIGSTOP) == 0);
  const auto t0 = std::chrono::steady_clock::now();
  sub->stop();
  const auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE(::kill(server.pid(), SIGCONT) == 0);
  CHECK(took >= 900ms);  // the drain was not confirmed: the deadline ended it
  CHECK(took < 5s);

  // The group resumes where it left off once the server answers again.
  REQUIRE(svc.mediator.publish(nt::OrderPlaced{"after", 2}));
  auto again = svc.mediator.subscribe<nt::OrderPlaced>(nt::group("frozen"), [&](const nt::OrderPlaced&) { ++handled; });
  REQUIRE(again);
  CHECK(wait_for([&] { return handled.load() == 2; }));
}

TEST_CASE("health reports connection, streams, consumer lag and the last error") {
  catga::test::NatsServer server;
  Instance svc(server, "svc");
  auto h = svc.transport->health();
  CHECK(h.ready());
  CHECK(h.connection == catga::nats::ConnectionState::connected);
  CHECK(h.stream_reachable);
  CHECK(h.dead_letter_stream_reachable);
  CHECK(h.consumers.empty());
  CHECK_FALSE(h.last_error.has_value());

  // A handler held back: the group's lag is every event published.
  std::atomic<bool> release{false};
  std::atomic<int> handled{0};
  auto sub = svc.mediator.subscribe<nt::OrderPlaced>(nt::group("lagging"), [&](const nt::OrderPlaced&) {
    while (!release.load()) std::this_thread::sleep_for(1ms);
    handled++;
  });
  REQUIRE(sub);
  constexpr int kEvents = 10;
  for (int i = 0; i < kEvents; ++i) REQUIRE(svc.mediator.publish(nt::OrderPlaced{"lag-" + std::to_string(i), i}));
  REQUIRE(wait_for([&] {
    auto now = svc.transport->health();
    return now.consumers.size() == 1 && now.consumers[0].reachable && now.consumers[0].num_ack_pending >= 1 &&
           now.consumers[0].lag() == kEvents;
  }));
  h = svc.transport->health();
  CHECK(h.stream_messages == kEvents);
  CHECK(h.consumers[0].group == "lagging");
  CHECK(h.consumers[0].type == "OrderPlaced");
  CHECK(h.consumers[0].handled == 0);
  release = true;
  REQUIRE(wait_for([&] {
    auto now = svc.transport->health();
    return handled.load() == kEvents && now.consumers.size() == 1 && now.consumers[0].lag() == 0 &&
           now.consumers[0].handled == kEvents;
  }));

  // The server goes away: not ready, nothing reachable, the reason is kept.
  server.stop();
  REQUIRE(wait_for([&] { return svc.transport->connection()->state() != catga::nats::ConnectionState::connected; }));
  h = svc.transport->health(200ms);
  CHECK_FALSE(h.ready());
  CHECK_FALSE(h.stream_reachable);
  REQUIRE(h.consumers.size() == 1);
  CHECK_FALSE(h.consumers[0].reachable);
  CHECK(h.consumers[0].error.has_value());
  CHECK(h.last_error.has_value());
  server.start();
  REQUIRE(svc.transport->connection()->wait_connected(30s));
}

TEST_CASE("an oversized body is dead-lettered as too_large undecoded; a copy beyond max payload is truncated") {
  catga::test::NatsServer server;
  auto js = nt::js_options();
  js.consumer.max_body_bytes = 4096;
  Instance svc(server, "svc", js);
  std::atomic<int> handled{0};
  auto sub = svc.mediator.subscribe<nt::OrderPlaced>(nt::group("billing"), [&](const nt::OrderPlaced& e) -> catga::Status {
    if (e.order_id == "rejected") return catga::make_error("invalid_address", "no such street", false);
    handled++;
    return {};
  });
  REQUIRE(sub);

  catga::test::RawNats raw(server.url());
  auto publish_raw = [&](const std::string& body, std::vector<std::pair<const char*, const char*>> headers) {
    natsMsg* m = nullptr;
    catga::test::check(natsMsg_Create(&m, "catga.evt.OrderPlaced", nullptr, body.data(), static_cast<int>(body.size())),
                       "msg");
    for (auto& [k, v] : headers) natsMsgHeader_Set(m, k, v);
    jsErrCode jerr{};
    catga::test::check(js_PublishMsg(nullptr, raw.js(), m, nullptr, &jerr), "publish raw");
    natsMsg_Destroy(m);
  };
  // Valid JSON, so only the size can be why it is refused.
  auto json_of_size = [](std::size_t n) {
    const std::string head = R"({"order_id":")", tail = R"(","amount":1})";
    return head + std::string(n - head.size() - tail.size(), 'x') + tail;
  };
  const auto max_payload = static_cast<std::size_t>(natsConnection_GetMaxPayload(raw.nc()));
  REQUIRE(max_payload > 8192);
  const std::string big = json_of_size(6000);
  const std::string huge = json_of_size(max_payload - 256);  // fits the stream, not beside the DLQ headers
  publish_raw(big, {{"Nats-Msg-Id", "big-1"}, {"Catga-Type", "OrderPlaced"}});
  publish_raw(huge, {{"Nats-Msg-Id", "huge-1"}, {"Catga-Type", "OrderPlaced"}});
  // A replayed copy failing again keeps the id of the first message.
  publish_raw(R"({"order_id":"rejected","amount":1})", {{"Nats-Msg-Id", "first-id.r7"},
                                                        {"Catga-Type", "OrderPlaced"},
                                                        {"Catga-Replayed", "7"},
                                                        {"Catga-Original-Msg-Id", "first-id"}});
  REQUIRE(svc.mediator.publish(nt::OrderPlaced{"small", 1}));

  REQUIRE(wait_for([&] { return handled.load() == 1 && nt::stream_count(raw, "CATGA_DLQ") == 3; }));
  REQUIRE(wait_for([&] { return group_settled(*svc.transport, "billing"); }));
  std::map<std::string, nt::Stored> by_id;
  for (auto& d : nt::read_stream(raw, "CATGA_DLQ")) by_id[d.header("Catga-Original-Msg-Id")] = d;
  REQUIRE(by_id.size() == 3);
  CHECK(by_id["big-1"].header("Catga-Error-Code") == "too_large");
  CHECK(by_id["big-1"].header("Catga-Error").find("6000") != std::string::npos);
  CHECK(by_id["big-1"].body == big);
  CHECK(by_id["big-1"].header("Catga-Body-Truncated") == "<absent>");
  CHECK(by_id["huge-1"].header("Catga-Error-Code") == "too_large");
  CHECK(by_id["huge-1"].header("Catga-Body-Truncated") == std::to_string(huge.size()));
  CHECK(by_id["huge-1"].body.size() < huge.size());
  CHECK(huge.compare(0, by_id["huge-1"].body.size(), by_id["huge-1"].body) == 0);
  CHECK(by_id["first-id"].header("Catga-Error-Code") == "invalid_address");
  CHECK(by_id["first-id"].header("Catga-Original-Seq") == "3");
  CHECK(svc.transport->health().consumers[0].dead_lettered == 3);
}
