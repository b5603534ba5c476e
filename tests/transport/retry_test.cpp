// Redelivery with backoff and dead-lettering of failed events.

#include <doctest/doctest.h>

#include <map>
#include <stdexcept>

#include "test_support.hpp"

using catga::Context;
using catga::InMemoryTransport;
using catga::Mediator;
using catga::Subscription;
using namespace tt;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST_CASE("a retryable failure is redelivered after the backoff until it succeeds") {
  InMemoryTransport transport;
  Mediator m;
  m.attach(transport);
  Recorder<std::pair<int, Clock::time_point>> attempts;
  Gate succeeded;
  catga::SubscribeOptions options{.group = "billing", .retry = {.max_deliver = 5, .backoff = {20ms, 40ms}}};
  auto sub = m.subscribe<OrderPlaced>(options, [&](const OrderPlaced&, Context& ctx) -> catga::Status {
                attempts.add({ctx.attempt, Clock::now()});
                if (ctx.attempt < 3) return catga::make_error("busy", "database busy", true);
                succeeded.open();
                return {};
              }).value();

  REQUIRE(m.publish(OrderPlaced{"A-1", 1}));
  REQUIRE(succeeded.wait());
  REQUIRE(transport.wait_idle(kWaitMs));

  auto seen = attempts.items();
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].first == 1);
  CHECK(seen[1].first == 2);
  CHECK(seen[2].first == 3);
  // Lower bounds only: a loaded machine may be slower, never faster.
  CHECK(seen[1].second - seen[0].second >= 20ms);
  CHECK(seen[2].second - seen[1].second >= 40ms);
  CHECK(seen[2].second - seen[0].second >= 60ms);

  auto stats = transport.group_stats("OrderPlaced", "billing");
  REQUIRE(stats);
  CHECK(stats->delivered == 3);
  CHECK(stats->redelivered == 2);
  CHECK(stats->acked == 1);
  CHECK(stats->dead_lettered == 0);
  CHECK(transport.dead_letters().empty());
}

TEST_CASE("exceptions thrown by a raw handler become retryable failures, not crashes") {
  InMemoryTransport transport;
  Mediator m;
  m.attach(transport);
  Recorder<int> attempts;
  auto sub = transport.subscribe("OrderPlaced", {.group = "g", .retry = {.max_deliver = 5, .backoff = {1ms}}},
                                 [&](catga::Delivery& d) -> catga::Status {
                                   attempts.add(d.attempt());
                                   if (d.attempt() == 1) throw std::runtime_error("boom");
                                   if (d.attempt() == 2) throw 42;  // not even a std::exception
                                   return {};
                                 });
  REQUIRE(sub);
  REQUIRE(m.publish(OrderPlaced{"A-1", 1}));
  REQUIRE(attempts.wait_size(3));
  REQUIRE(transport.wait_idle(kWaitMs));
  CHECK(attempts.items() == std::vector<int>{1, 2, 3});
  CHECK(transport.group_stats("OrderPlaced", "g")->acked == 1);
  CHECK(transport.dead_letters().empty());
}

TEST_CASE("a message failing every delivery is dead-lettered after max_deliver; others keep flowing") {
  InMemoryTransport transport;
  Mediator m;
  m.attach(transport);
  Recorder<std::string> handled;
  Recorder<int> poison_attempts;
  catga::SubscribeOptions options{.group = "billing", .retry = {.max_deliver = 3, .backoff = {1ms, 2ms}}, .workers = 2};
  auto sub = m.subscribe<OrderPlaced>(options, [&](const OrderPlaced& e, Context& ctx) -> catga::Status {
                if (e.order_id == "poison") {
                  poison_attempts.add(ctx.attempt);
                  return catga::make_error("db_down", "database unreachable", true);
                }
                handled.add(e.order_id);
                return {};
              }).value();

  Context poison_ctx = Context::root();
  poison_ctx.headers.set("Tenant", "acme");
  REQUIRE(m.publish(OrderPlaced{"ok-0", 0}));
  REQUIRE(m.publish(OrderPlaced{"poison", 1}, poison_ctx));
  for (int i = 1; i <= 20; ++i) REQUIRE(m.publish(OrderPlaced{"ok-" + std::to_string(i), i}));
  REQUIRE(handled.wait_size(21));
  REQUIRE(transport.wait_idle(kWaitMs));

  CHECK(poison_attempts.items() == std::vector<int>{1, 2, 3});
  auto dead = transport.dead_letters();
  REQUIRE(dead.size() == 1);
  const auto& d = dead.front();
  CHECK(d.sequence == 1);
  CHECK(d.type == "OrderPlaced");
  CHECK(d.group == "billing");
  CHECK(d.deliveries == 3);
  CHECK(d.original_sequence == 2);
  CHECK(d.error.code == "db_down");
  CHECK(d.message.subject == "catga.dlq.OrderPlaced");
  CHECK(nlohmann::json::parse(d.message.body) == nlohmann::json(OrderPlaced{"poison", 1}));
  const auto& h = d.message.headers;
  CHECK(h.get(catga::wire::kError) == std::optional<std::string_view>("database unreachable"));
  CHECK(h.get(catga::wire::kErrorCode) == std::optional<std::string_view>("db_down"));
  CHECK(h.get(catga::wire::kDeliveries) == std::optional<std::string_view>("3"));
  CHECK(h.get(catga::wire::kOriginalSubject) == std::optional<std::string_view>("catga.evt.OrderPlaced"));
  CHECK(h.get(catga::wire::kOriginalSeq) == std::optional<std::string_view>("2"));
  // The original headers travel with it.
  CHECK(h.get(catga::wire::kMsgId) == std::optional<std::string_view>(poison_ctx.message_id.text().view()));
  CHECK(h.get(catga::wire::kType) == std::optional<std::string_view>("OrderPlaced"));
  CHECK(h.get("Tenant") == std::optional<std::string_view>("acme"));

  auto stats = transport.group_stats("OrderPlaced", "billing");
  REQUIRE(stats);
  CHECK(stats->dead_lettered == 1);
  CHECK(stats->redelivered == 2);
  CHECK(stats->acked == 21);
}

TEST_CASE("a non-retryable failure is dead-lettered on the first delivery") {
  InMemoryTransport transport;
  Mediator m;
  m.attach(transport);
  Recorder<int> attempts;
  auto sub = m.subscribe<OrderPlaced>(opts("billing"), [&](const OrderPlaced&, Context& ctx) -> catga::Status {
                attempts.add(ctx.attempt);
                return catga::make_error("rejected", "amount must be positive");
              }).value();
  REQUIRE(m.publish(OrderPlaced{"A-1", -5}));
  REQUIRE(transport.wait_idle(kWaitMs));
  CHECK(attempts.items() == std::vector<int>{1});
  auto dead = transport.dead_letters();
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].deliveries == 1);
  CHECK(dead[0].error.code == "rejected");
  CHECK(dead[0].message.headers.get(catga::wire::kDeliveries) == std::optional<std::string_view>("1"));
  CHECK(dead[0].message.headers.get(catga::wire::kError) ==
        std::optional<std::string_view>("amount must be positive"));
}

TEST_CASE("each group retries and dead-letters on its own") {
  InMemoryTransport transport;
  Mediator m;
  m.attach(transport);
  Recorder<std::string> audit;
  auto failing = m.subscribe<OrderPlaced>(opts("billing"), [](const OrderPlaced&) -> catga::Status {
                    return catga::make_error("rejected", "no");
                  }).value();
  auto auditing =
      m.subscribe<OrderPlaced>(opts("audit"), [&](const OrderPlaced& e) { audit.add(e.order_id); }).value();
  REQUIRE(m.publish(OrderPlaced{"A-1", 1}));
  REQUIRE(transport.wait_idle(kWaitMs));
  CHECK(audit.items() == std::vector<std::string>{"A-1"});
  auto dead = transport.dead_letters();
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].group == "billing");
}
