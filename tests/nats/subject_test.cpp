// Subjects built from names a user or a remote party controls are checked
// before anything is sent (issue 21): nats.c 3.4.1 publishes any subject as
// given, so a type "Order Placed" would go out as subject "….Order" with
// reply "Placed", and a type ">" would serve or consume every subject.
#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <vector>

#include "catga/wire.hpp"
#include "nats_server.hpp"
#include "test_messages.hpp"

using namespace std::chrono_literals;

namespace {

// Names no subject may be built from: wildcards, a space, a control
// character, an empty token, a '.' at an end, a system subject.
const std::vector<std::string> kBadTypes = {"Order*", "*",     ">",         "Order>",   "Order Placed",
                                            "Order\tX", "Order\r\nPUB x 1", "a..b", ".a", "a.",
                                            "",         "$JS.API.STREAM.LIST"};

catga::MessageInfo info_of(std::string_view name, catga::MessageKind kind,
                           catga::QoS qos = catga::QoS::at_least_once) {
  return catga::MessageInfo{name, kind, qos, 0, false, nullptr, nullptr, nullptr, nullptr};
}

bool refused(const catga::Error& e) {
  return e.code == catga::errc::validation && e.message.find("cannot be used in a NATS subject") != std::string::npos;
}

}  // namespace

TEST_CASE("check_subject: wildcards, spaces, control characters, empty tokens and '$' are refused") {
  using catga::wire::check_subject;
  using catga::wire::SubjectPart;
  for (const auto& bad : kBadTypes) {
    auto s = check_subject(bad, "message type");
    INFO("name: ", bad);
    REQUIRE_FALSE(s);
    CHECK(refused(s.error()));
    CHECK(s.error().message.find("message type '") == 0);
  }
  // The name is shown escaped: a hostile one cannot forge a log line.
  auto crlf = check_subject("A\r\nlevel=error", "message type");
  REQUIRE_FALSE(crlf);
  CHECK(crlf.error().message.find('\n') == std::string::npos);
  CHECK(crlf.error().message.find("A\\x0d\\x0alevel=error") != std::string::npos);

  for (const char* good : {"OrderPlaced", "shop.OrderPlaced", "a-b_c", "ns::Type", "v2", "Ünïcode"}) {
    INFO("name: ", good);
    CHECK(check_subject(good, "message type"));
  }
  CHECK(check_subject("CATGA_EVENTS", "stream", SubjectPart::token));
  CHECK_FALSE(check_subject("CATGA.EVENTS", "stream", SubjectPart::token));
  CHECK_FALSE(check_subject("CATGA EVENTS", "stream", SubjectPart::token));
}

TEST_CASE("a message type that cannot be a subject is refused by publish, request, subscribe and serve; nothing is sent") {
  catga::test::NatsServer server;
  auto transport = nt::make_transport(server);
  const std::string body = "{}";
  const catga::Context ctx = catga::Context::root();
  std::atomic<int> outcomes{0};
  std::vector<catga::Subscription> kept;  // what the old code let through stays open to the end
  for (const auto& bad : kBadTypes) {
    INFO("type: ", bad);
    const auto event = info_of(bad, catga::MessageKind::event);
    const auto fast = info_of(bad, catga::MessageKind::event, catga::QoS::at_most_once);
    const auto command = info_of(bad, catga::MessageKind::command);

    auto p = transport->publish({event, body, ctx});
    REQUIRE_FALSE(p);
    CHECK(refused(p.error()));
    auto f = transport->publish({fast, body, ctx});
    REQUIRE_FALSE(f);
    CHECK(refused(f.error()));
    auto a = transport->publish_async({event, body, ctx}, [&](const catga::nats::PublishOutcome&) { outcomes++; });
    REQUIRE_FALSE(a);
    CHECK(refused(a.error()));
    CHECK(transport->flush(5s));
    auto r = transport->request({command, body, ctx});
    REQUIRE_FALSE(r);
    CHECK(refused(r.error()));

    auto sub = transport->subscribe(bad, nt::group("audit"), [](catga::Delivery&) { return catga::Status{}; });
    if (sub) kept.push_back(std::move(*sub));
    REQUIRE_FALSE(sub);
    CHECK(refused(sub.error()));
    auto served = transport->serve(bad, "svc", [](catga::Delivery&) { return std::string(R"({"ok":true})"); });
    if (served) kept.push_back(std::move(*served));
    REQUIRE_FALSE(served);
    CHECK(refused(served.error()));
  }
  // A queue group name is one token.
  auto svc = transport->serve("Add", "billing service", [](catga::Delivery&) { return std::string(R"({"ok":true})"); });
  REQUIRE_FALSE(svc);
  CHECK(refused(svc.error()));

  CHECK(outcomes.load() == 0);
  CHECK(transport->health().stream_messages == 0);  // nothing reached the events stream

  // A normal type still goes through.
  const auto good = info_of("OrderPlaced", catga::MessageKind::event);
  REQUIRE(transport->publish({good, body, ctx}));
  CHECK(transport->health().stream_messages == 1);
}

TEST_CASE("a prefix or stream name that cannot be a subject is refused when the transport is created") {
  catga::test::NatsServer server;
  for (const char* prefix : {"shop..eu", "shop*", ">", "sh op", "$shop", ".shop", "shop."}) {
    INFO("prefix: ", prefix);
    auto t = catga::nats::JetStreamTransport::create(nt::nats_options(server), nt::js_options(prefix));
    REQUIRE_FALSE(t);
    CHECK(refused(t.error()));
  }
  for (const char* name : {"EVENTS.X", "EVENTS*", "EVENTS>", "MY EVENTS", "$EVENTS"}) {
    INFO("stream: ", name);
    auto js = nt::js_options("named");
    js.events.name = name;
    auto t = catga::nats::JetStreamTransport::create(nt::nats_options(server), js);
    REQUIRE_FALSE(t);
    CHECK(refused(t.error()));
  }
  auto ok = catga::nats::JetStreamTransport::create(nt::nats_options(server), nt::js_options("my-shop.eu"));
  CHECK(ok);
}
