// docs/wire-format.md is the contract: a plain nats.c client, knowing only
// that document, exchanges events and requests with catga.
#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <optional>
#include <regex>

#include "nats_server.hpp"
#include "raw_nats.hpp"
#include "stream_reader.hpp"
#include "test_messages.hpp"
#include "wait_for.hpp"

using namespace std::chrono_literals;
using catga::test::check;

namespace {

natsMsg* raw_message(const char* subject, const std::string& body,
                     std::vector<std::pair<std::string, std::string>> headers) {
  natsMsg* m = nullptr;
  check(natsMsg_Create(&m, subject, nullptr, body.data(), static_cast<int>(body.size())), "natsMsg_Create");
  for (auto& [k, v] : headers) check(natsMsgHeader_Set(m, k.c_str(), v.c_str()), "header " + k);
  return m;
}

}  // namespace

TEST_CASE("wire: an event published by plain nats.c with the documented headers is consumed by catga") {
  catga::test::NatsServer server;
  auto t = nt::make_transport(server);
  catga::Mediator m;
  m.attach(*t);
  std::mutex mu;
  std::optional<catga::Context> seen_ctx;
  std::optional<nt::OrderPlaced> seen;
  auto sub = m.subscribe<nt::OrderPlaced>(nt::group("billing"), [&](const nt::OrderPlaced& e, catga::Context& ctx) {
    std::lock_guard lock(mu);
    seen = e;
    seen_ctx = ctx;
  });
  REQUIRE(sub);

  catga::test::RawNats raw(server.url());
  natsMsg* msg = raw_message("catga.evt.OrderPlaced", R"({"order_id":"from-go","amount":12})",
                             {{"Nats-Msg-Id", "order-evt-0001"},
                              {"Catga-Type", "OrderPlaced"},
                              {"Catga-Correlation-Id", "corr-42"},
                              {"Catga-Causation-Id", "cause-7"},
                              {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
                              {"Content-Type", "application/json"},
                              {"Tenant", "acme"}});
  jsErrCode jerr{};
  check(js_PublishMsg(nullptr, raw.js(), msg, nullptr, &jerr), "js_PublishMsg");
  natsMsg_Destroy(msg);

  REQUIRE(catga::test::wait_for([&] {
    std::lock_guard lock(mu);
    return seen.has_value();
  }));
  std::lock_guard lock(mu);
  CHECK(seen->order_id == "from-go");
  CHECK(seen->amount == 12);
  CHECK(seen_ctx->message_id.text().str() == "order-evt-0001");
  CHECK(seen_ctx->correlation_id.text().str() == "corr-42");
  CHECK(seen_ctx->causation_id.text().str() == "cause-7");
  CHECK(seen_ctx->trace.valid());
  CHECK(seen_ctx->trace.trace_hi == 0x4bf92f3577b34da6ull);
  CHECK(seen_ctx->trace.trace_lo == 0xa3ce929d0e0e4736ull);
  CHECK(seen_ctx->trace.parent_span_id == 0x00f067aa0ba902b7ull);
  CHECK(seen_ctx->attempt == 1);
  REQUIRE(seen_ctx->headers.get("Tenant"));
  CHECK(*seen_ctx->headers.get("Tenant") == "acme");
}

TEST_CASE("wire: a catga event read by plain nats.c carries exactly the documented subject, headers and body") {
  catga::test::NatsServer server;
  auto t = nt::make_transport(server);
  catga::Mediator m;
  m.attach(*t);
  auto parent = catga::Context::root();
  auto ctx = parent.child();
  ctx.headers.set("Tenant", "acme");
  REQUIRE(m.publish(nt::OrderPlaced{"A-1", 5}, ctx));

  catga::test::RawNats raw(server.url());
  auto stored = nt::read_stream(raw, "CATGA_EVENTS");
  REQUIRE(stored.size() == 1);
  const auto& e = stored[0];
  CHECK(e.subject == "catga.evt.OrderPlaced");
  CHECK(e.body == R"({"amount":5,"order_id":"A-1"})");
  CHECK(e.header("Nats-Msg-Id") == ctx.message_id.text().str());
  CHECK(std::regex_match(e.header("Nats-Msg-Id"), std::regex("[0-9a-f]{32}")));
  CHECK(e.header("Catga-Type") == "OrderPlaced");
  CHECK(e.header("Catga-Correlation-Id") == parent.correlation_id.text().str());
  CHECK(e.header("Catga-Causation-Id") == parent.message_id.text().str());
  CHECK(std::regex_match(e.header("traceparent"), std::regex("00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]")));
  CHECK(e.header("traceparent").substr(3, 32) ==
        std::string(parent.trace.traceparent().view()).substr(3, 32));  // same trace as the parent
  CHECK(e.header("Content-Type") == "application/json");
  CHECK(e.header("Tenant") == "acme");
  CHECK_FALSE(e.has("Catga-Timeout-Ms"));  // no deadline, no header
  CHECK(e.headers.size() == 7);
}

TEST_CASE("wire: a plain nats.c request to catga.cmd.<Type> gets the documented reply bodies") {
  catga::test::NatsServer server;
  auto t = nt::make_transport(server);
  catga::Mediator m;
  m.attach(*t);
  m.handle<nt::Add>([](const nt::Add& a) { return a.a + a.b; });
  m.handle<nt::Fail>([](const nt::Fail& f) -> catga::Status {
    return catga::make_error("payment_declined", f.why, false);
  });
  auto s1 = m.serve<nt::Add>("calculator");
  auto s2 = m.serve<nt::Fail>("calculator");
  REQUIRE(s1);
  REQUIRE(s2);

  catga::test::RawNats raw(server.url());
  auto request = [&](const char* subject, const std::string& body, const char* type) {
    natsMsg* req = raw_message(subject, body,
                               {{"Nats-Msg-Id", "req-1"}, {"Catga-Type", type}, {"Content-Type", "application/json"},
                                {"Catga-Timeout-Ms", "5000"}});
    natsMsg* reply = nullptr;
    check(natsConnection_RequestMsg(&reply, raw.nc(), req, 10000), "request");
    std::string out(natsMsg_GetData(reply), static_cast<std::size_t>(natsMsg_GetDataLength(reply)));
    natsMsg_Destroy(reply);
    natsMsg_Destroy(req);
    return out;
  };
  CHECK(request("catga.cmd.Add", R"({"a":2,"b":40})", "Add") == R"({"ok":true,"value":42})");
  CHECK(request("catga.cmd.Fail", R"({"why":"card expired"})", "Fail") ==
        R"({"error":{"code":"payment_declined","message":"card expired","retryable":false},"ok":false})");
  CHECK(request("catga.cmd.Add", R"({"a":"x"})", "Add").find(R"("code":"malformed")") != std::string::npos);
}

TEST_CASE("wire: catga requests reach a plain nats.c responder in the service's queue group") {
  catga::test::NatsServer server;
  auto t = nt::make_transport(server);
  catga::Mediator m;
  m.attach(*t);
  m.route_remote<nt::Add>();

  catga::test::RawNats raw(server.url());
  natsSubscription* sub = nullptr;
  check(natsConnection_QueueSubscribeSync(&sub, raw.nc(), "catga.cmd.Add", "calculator"), "queue subscribe");
  check(natsConnection_Flush(raw.nc()), "flush");
  std::thread responder([&] {
    natsMsg* req = nullptr;
    if (natsSubscription_NextMsg(&req, sub, 10000) != NATS_OK) return;
    const char* type = nullptr;
    const char* id = nullptr;
    natsMsgHeader_Get(req, "Catga-Type", &type);
    natsMsgHeader_Get(req, "Nats-Msg-Id", &id);
    const std::string body(natsMsg_GetData(req), static_cast<std::size_t>(natsMsg_GetDataLength(req)));
    const bool as_documented = type != nullptr && std::string(type) == "Add" && id != nullptr && std::strlen(id) == 32 &&
                               body == R"({"a":20,"b":3})";
    const std::string reply = as_documented ? R"({"ok":true,"value":23})"
                                            : R"({"ok":false,"error":{"code":"bad","message":"not as documented"}})";
    natsConnection_Publish(raw.nc(), natsMsg_GetReply(req), reply.data(), static_cast<int>(reply.size()));
    natsMsg_Destroy(req);
  });
  auto r = m.send(nt::Add{20, 3});
  responder.join();
  natsSubscription_Destroy(sub);
  REQUIRE(r);
  CHECK(*r == 23);
}

TEST_CASE("wire: streams and consumers are the documented ones") {
  catga::test::NatsServer server;
  auto t = nt::make_transport(server);
  catga::Mediator m;
  m.attach(*t);
  auto sub = m.subscribe<nt::OrderPlaced>(nt::group("billing"), [](const nt::OrderPlaced&) {});
  REQUIRE(sub);
  catga::test::RawNats raw(server.url());
  jsStreamInfo* si = nullptr;
  jsErrCode jerr{};
  check(js_GetStreamInfo(&si, raw.js(), "CATGA_EVENTS", nullptr, &jerr), "events stream");
  REQUIRE(si->Config->SubjectsLen == 1);
  CHECK(std::string(si->Config->Subjects[0]) == "catga.evt.>");
  CHECK(si->Config->Duplicates == std::chrono::nanoseconds(2min).count());
  jsStreamInfo_Destroy(si);
  check(js_GetStreamInfo(&si, raw.js(), "CATGA_DLQ", nullptr, &jerr), "dead-letter stream");
  CHECK(std::string(si->Config->Subjects[0]) == "catga.dlq.>");
  jsStreamInfo_Destroy(si);
  jsConsumerInfo* ci = nullptr;
  check(js_GetConsumerInfo(&ci, raw.js(), "CATGA_EVENTS", "billing_OrderPlaced", nullptr, &jerr), "consumer");
  CHECK(std::string(ci->Config->FilterSubject) == "catga.evt.OrderPlaced");
  CHECK(ci->Config->AckPolicy == js_AckExplicit);
  CHECK(ci->Config->DeliverSubject == nullptr);  // pull
  CHECK(ci->Config->AckWait == std::chrono::nanoseconds(30s).count());
  CHECK(ci->Config->MaxDeliver == -1);
  jsConsumerInfo_Destroy(ci);
}
