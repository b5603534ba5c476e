// Messages the consumer cannot decode, and listing, replaying and purging
// dead letters.

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <map>

#include "test_support.hpp"

using catga::Context;
using catga::InMemoryTransport;
using catga::Mediator;
using catga::Subscription;
using namespace tt;
namespace wire = catga::wire;

namespace {

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

}  // namespace

TEST_CASE("undecodable messages are dead-lettered with a clear error and the consumer keeps going") {
  InMemoryTransport transport;
  Mediator m;
  m.attach(transport);
  Recorder<std::string> handled;
  auto sub = m.subscribe<OrderPlaced>(opts("billing"), [&](const OrderPlaced& e) { handled.add(e.order_id); })
                 .value();
  const std::string subject = "catga.evt.OrderPlaced";

  REQUIRE(transport.publish_raw(subject, order_headers("m-1"), "{not json"));
  REQUIRE(transport.publish_raw(subject, order_headers("m-2", "PaymentTaken"), R"({"order_id":"x","amount":1})"));
  catga::Headers no_id = order_headers("unused");
  no_id.erase(wire::kMsgId);
  REQUIRE(transport.publish_raw(subject, no_id, R"({"order_id":"y","amount":1})"));
  REQUIRE(transport.publish_raw(subject, order_headers("m-4"), R"({"order_id":5,"sku":"wrong shape"})"));
  REQUIRE(m.publish(OrderPlaced{"good", 1}));

  REQUIRE(handled.wait_size(1));
  REQUIRE(transport.wait_idle(kWaitMs));
  CHECK(handled.items() == std::vector<std::string>{"good"});

  auto dead = transport.dead_letters();
  REQUIRE(dead.size() == 4);
  std::map<std::uint64_t, catga::DeadLetter> by_seq;
  for (auto& d : dead) by_seq[d.original_sequence] = d;
  REQUIRE(by_seq.size() == 4);

  const auto& bad_json = by_seq.at(1);
  CHECK(bad_json.error.code == catga::errc::malformed);
  CHECK(contains(bad_json.error.message, "not valid JSON"));
  CHECK(bad_json.deliveries == 1);  // not retryable: one delivery only
  CHECK(bad_json.message.body == "{not json");

  const auto& wrong_type = by_seq.at(2);
  CHECK(wrong_type.error.code == catga::errc::unknown_type);
  CHECK(contains(wrong_type.error.message, "PaymentTaken"));
  CHECK(contains(wrong_type.error.message, "OrderPlaced"));

  const auto& missing_id = by_seq.at(3);
  CHECK(missing_id.error.code == catga::errc::malformed);
  CHECK(contains(missing_id.error.message, "Nats-Msg-Id"));
  CHECK_FALSE(missing_id.message.headers.get(wire::kMsgId).has_value());

  const auto& wrong_shape = by_seq.at(4);
  CHECK(wrong_shape.error.code == catga::errc::malformed);
  CHECK(contains(wrong_shape.error.message, "OrderPlaced"));

  for (const auto& d : dead) {
    CHECK(d.message.subject == "catga.dlq.OrderPlaced");
    CHECK(d.message.headers.get(wire::kErrorCode) == std::optional<std::string_view>(d.error.code));
    CHECK(d.message.headers.get(wire::kOriginalSeq) ==
          std::optional<std::string_view>(std::to_string(d.original_sequence)));
  }
}

TEST_CASE("publish_raw only accepts event subjects of the transport's prefix") {
  InMemoryTransport transport;
  for (std::string_view subject : {"catga.cmd.OrderPlaced", "other.evt.OrderPlaced", "catga.evt.", "catga"}) {
    CAPTURE(subject);
    auto s = transport.publish_raw(subject, order_headers("m-1"), "{}");
    REQUIRE_FALSE(s);
    CHECK(s.error().code == catga::errc::validation);
  }
}

TEST_CASE("a replayed dead letter is handled once, with its original id and a Catga-Replayed header") {
  InMemoryTransport transport;
  Mediator m;
  m.attach(transport);
  std::atomic<bool> accept{false};
  Recorder<std::pair<std::string, Context>> handled;
  auto sub = m.subscribe<OrderPlaced>(opts("billing"), [&](const OrderPlaced& e, Context& ctx) -> catga::Status {
                if (!accept) return catga::make_error("rejected", "billing closed");
                handled.add({e.order_id, ctx});
                return {};
              }).value();

  Context ctx = Context::root();
  REQUIRE(m.publish(OrderPlaced{"A-1", 1}, ctx));
  REQUIRE(transport.wait_idle(kWaitMs));
  auto dead = transport.dead_letters();
  REQUIRE(dead.size() == 1);
  CHECK(handled.size() == 0);

  accept = true;
  REQUIRE(transport.replay_dead_letter(dead[0].sequence));
  REQUIRE(handled.wait_size(1));
  REQUIRE(transport.wait_idle(kWaitMs));
  auto got = handled.items();
  REQUIRE(got.size() == 1);
  CHECK(got[0].first == "A-1");
  CHECK(got[0].second.message_id == ctx.message_id);
  CHECK(got[0].second.headers.get(wire::kReplayed) == std::optional<std::string_view>(std::to_string(dead[0].sequence)));
  // The dead-letter annotations do not travel with the replay.
  CHECK_FALSE(got[0].second.headers.get(wire::kError).has_value());
  CHECK_FALSE(got[0].second.headers.get(wire::kOriginalSeq).has_value());
  CHECK(transport.dead_letters().empty());

  auto again = transport.replay_dead_letter(dead[0].sequence);
  REQUIRE_FALSE(again);
  CHECK(again.error().code == "not_found");
}

TEST_CASE("dead letters can be removed one by one or purged by type") {
  InMemoryTransport transport;
  Mediator m;
  m.attach(transport);
  auto reject = [](const auto&) -> catga::Status { return catga::make_error("rejected", "no"); };
  auto s1 = m.subscribe<OrderPlaced>(opts("g"), reject).value();
  auto s2 = m.subscribe<OrderShipped>(opts("g"), reject).value();
  for (int i = 0; i < 3; ++i) REQUIRE(m.publish(OrderPlaced{"p-" + std::to_string(i), i}));
  for (int i = 0; i < 2; ++i) REQUIRE(m.publish(OrderShipped{"s-" + std::to_string(i)}));
  REQUIRE(transport.wait_idle(kWaitMs));
  auto dead = transport.dead_letters();
  REQUIRE(dead.size() == 5);
  for (std::size_t i = 1; i < dead.size(); ++i) CHECK(dead[i - 1].sequence < dead[i].sequence);

  auto placed = std::find_if(dead.begin(), dead.end(), [](const auto& d) { return d.type == "OrderPlaced"; });
  REQUIRE(placed != dead.end());
  CHECK(transport.remove_dead_letter(placed->sequence));
  CHECK_FALSE(transport.remove_dead_letter(placed->sequence));
  CHECK(transport.dead_letters().size() == 4);
  CHECK(transport.purge_dead_letters("OrderShipped") == 2);
  auto left = transport.dead_letters();
  REQUIRE(left.size() == 2);
  for (const auto& d : left) CHECK(d.type == "OrderPlaced");
  CHECK(transport.purge_dead_letters() == 2);
  CHECK(transport.dead_letters().empty());
}

TEST_CASE("the dead-letter list keeps the newest max_dead_letters") {
  InMemoryTransport transport({.max_dead_letters = 2});
  Mediator m;
  m.attach(transport);
  auto sub = m.subscribe<OrderPlaced>(opts("g"), [](const OrderPlaced&) -> catga::Status {
                return catga::make_error("rejected", "no");
              }).value();
  for (int i = 0; i < 5; ++i) REQUIRE(m.publish(OrderPlaced{"p-" + std::to_string(i), i}));
  REQUIRE(transport.wait_idle(kWaitMs));
  auto dead = transport.dead_letters();
  REQUIRE(dead.size() == 2);
  CHECK(dead[0].sequence == 4);
  CHECK(dead[1].sequence == 5);
  CHECK(transport.group_stats("OrderPlaced", "g")->dead_lettered == 5);
}
