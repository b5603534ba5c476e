// Conformance: redelivery after a failure, dead letters after the last
// attempt, failures that are final at once, undecodable messages. The retry
// policy is the library's default (RetryPolicy{}: 5 deliveries, backoff
// 100 ms, 500 ms, 2 s, 5 s), so a dead letter after every attempt takes
// about 8 s.
#include <doctest/doctest.h>

#include <atomic>

#include "catga/wire.hpp"
#include "conformance_support.hpp"

using namespace conformance;

namespace {

// Hands a body to the transport as the mediator would, without encoding it:
// what a producer with another version or another language may send.
catga::Status publish_body(catga::Transport& transport, std::string_view body, const std::string& id) {
  const auto& info = catga::message_info<Placed>();
  auto ctx = with_id(id);
  ctx.message_type = info.name;
  return transport.publish(catga::OutboundMessage{info, body, ctx});
}

}  // namespace

TEST_CASE("a retryable failure is redelivered, the same message with a growing attempt, until it succeeds") {
  auto broker = make_broker();
  Node node(*broker, "svc");
  std::mutex mu;
  std::vector<std::tuple<int, std::string, std::string>> attempts;  // attempt, message id, order id
  auto sub = node.mediator.subscribe<Placed>(group("billing"), [&](const Placed& e, catga::Context& ctx) -> catga::Status {
    std::lock_guard lock(mu);
    attempts.emplace_back(ctx.attempt, ctx.message_id.text().str(), e.id);
    if (ctx.attempt < 3) return catga::make_error("busy", "database busy", true);
    return {};
  });
  REQUIRE(sub);
  REQUIRE(node.mediator.publish(Placed{"R-1", 1}, with_id("retry-1")));

  REQUIRE(catga::test::wait_for([&] {
    std::lock_guard lock(mu);
    return attempts.size() >= 3;
  }, kWait));
  REQUIRE(broker->settled(kWait));
  std::lock_guard lock(mu);
  REQUIRE(attempts.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(std::get<0>(attempts[static_cast<std::size_t>(i)]) == i + 1);
    CHECK(std::get<1>(attempts[static_cast<std::size_t>(i)]) == "retry-1");
    CHECK(std::get<2>(attempts[static_cast<std::size_t>(i)]) == "R-1");
  }
  CHECK(broker->dead_letters("Placed").empty());
}

TEST_CASE("a message failing every attempt is dead-lettered after the last one with its error; the rest flows") {
  auto broker = make_broker();
  Node node(*broker, "svc");
  std::atomic<int> poison_attempts{0};
  Ledger fine;
  auto sub = node.mediator.subscribe<Placed>(group("shipping"), [&](const Placed& e) -> catga::Status {
    if (e.id == "poison") {
      ++poison_attempts;
      return catga::make_error("carrier_down", "carrier answered 503", true);
    }
    fine.add(e.id);
    return {};
  });
  REQUIRE(sub);
  REQUIRE(node.mediator.publish(Placed{"poison", 0}, with_id("poison-1")));
  for (int i = 0; i < 10; ++i) REQUIRE(node.mediator.publish(Placed{"ok-" + std::to_string(i), i}));

  const int max_deliver = catga::RetryPolicy{}.max_deliver;
  REQUIRE(fine.wait_total(10));
  REQUIRE(catga::test::wait_for([&] { return broker->dead_letters("Placed").size() == 1; }, kWait));
  REQUIRE(broker->settled(kWait));
  CHECK(poison_attempts.load() == max_deliver);
  CHECK(fine.distinct() == 10);
  auto dead = broker->dead_letters("Placed");
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].type == "Placed");
  CHECK(dead[0].group == "shipping");
  CHECK(dead[0].error == "carrier answered 503");
  CHECK(dead[0].error_code == "carrier_down");
  CHECK(dead[0].deliveries == max_deliver);
  CHECK(dead[0].original_subject == "catga.evt.Placed");
  CHECK(dead[0].original_msg_id == "poison-1");
  CHECK(dead[0].body == catga::wire::encode_body(Placed{"poison", 0}));
}

TEST_CASE("a final handler error and undecodable bodies are dead-lettered at once with their reason; nothing is lost") {
  auto broker = make_broker();
  Node node(*broker, "svc");
  Ledger handled;
  std::atomic<int> rejected_attempts{0};
  auto sub = node.mediator.subscribe<Placed>(group("billing"), [&](const Placed& e) -> catga::Status {
    if (e.id == "rejected") {
      ++rejected_attempts;
      return catga::make_error("invalid_address", "no such street", false);
    }
    handled.add(e.id);
    return {};
  });
  REQUIRE(sub);
  REQUIRE(node.mediator.publish(Placed{"rejected", 1}, with_id("rejected-1")));
  REQUIRE(publish_body(*node.transport, "{not json", "bad-json-1"));
  REQUIRE(publish_body(*node.transport, R"({"id":"x","n":"not a number"})", "bad-shape-1"));
  for (int i = 0; i < 10; ++i) REQUIRE(node.mediator.publish(Placed{"ok-" + std::to_string(i), i}));

  REQUIRE(handled.wait_total(10));
  REQUIRE(catga::test::wait_for([&] { return broker->dead_letters("Placed").size() == 3; }, kWait));
  REQUIRE(broker->settled(kWait));
  CHECK(handled.distinct() == 10);
  CHECK(rejected_attempts.load() == 1);
  std::map<std::string, DeadLetterCopy> by_id;
  for (auto& d : broker->dead_letters("Placed")) by_id[d.original_msg_id] = d;
  REQUIRE(by_id.size() == 3);
  CHECK(by_id["rejected-1"].error_code == "invalid_address");
  CHECK(by_id["rejected-1"].error == "no such street");
  CHECK(by_id["rejected-1"].deliveries == 1);
  for (const char* id : {"bad-json-1", "bad-shape-1"}) {
    CAPTURE(id);
    CHECK(by_id[id].error_code == catga::errc::malformed);
    CHECK_FALSE(by_id[id].error.empty());
    CHECK(by_id[id].deliveries == 1);
    CHECK(by_id[id].group == "billing");
  }
  CHECK(by_id["bad-json-1"].body == "{not json");
}
