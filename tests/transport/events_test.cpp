// Publishing and consuming events through InMemoryTransport: wire encoding,
// context reconstruction, consumer groups, capacity, re-entrancy, shutdown.

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>

#include "test_support.hpp"

using catga::Context;
using catga::InMemoryTransport;
using catga::Mediator;
using catga::Subscription;
using namespace tt;
using namespace std::chrono_literals;

TEST_CASE("a published event reaches the subscriber with its context rebuilt") {
  InMemoryTransport transport;
  Mediator m;
  m.attach(transport);
  Recorder<std::pair<OrderPlaced, Context>> got;
  Subscription sub = m.subscribe<OrderPlaced>(opts("billing"), [&](const OrderPlaced& e, Context& ctx) {
                        got.add({e, ctx});
                      }).value();

  Context ctx = Context::root().child();  // has a causation id
  ctx.headers.set("Tenant", "acme");
  ctx.headers.set("X-Request", "r-17");
  REQUIRE(m.publish(OrderPlaced{"A-1", 42}, ctx));
  REQUIRE(got.wait_size(1));

  const auto [event, rx] = got.items().front();
  CHECK(event.order_id == "A-1");
  CHECK(event.amount == 42);
  CHECK(rx.message_id == ctx.message_id);
  CHECK(rx.correlation_id == ctx.correlation_id);
  CHECK(rx.causation_id == ctx.causation_id);
  CHECK_FALSE(rx.causation_id.is_nil());
  CHECK(rx.trace.trace_hi == ctx.trace.trace_hi);
  CHECK(rx.trace.trace_lo == ctx.trace.trace_lo);
  CHECK(rx.trace.parent_span_id == ctx.trace.span_id);  // the consumer's span is a child of the publisher's
  CHECK(rx.headers.get("Tenant") == std::optional<std::string_view>("acme"));
  CHECK(rx.headers.get("X-Request") == std::optional<std::string_view>("r-17"));
  CHECK(rx.attempt == 1);
  CHECK(rx.message_type == "OrderPlaced");
}

TEST_CASE("an event does not carry the publisher's deadline (a stored event outlives the request)") {
  InMemoryTransport transport;
  Mediator m;
  m.attach(transport);
  Recorder<bool> had_deadline;
  Recorder<bool> had_header;
  Subscription sub = m.subscribe<OrderPlaced>(opts("billing"), [&](const OrderPlaced&, Context& ctx) {
                        had_deadline.add(ctx.has_deadline());
                        had_header.add(ctx.headers.get("Catga-Timeout-Ms").has_value());
                      }).value();
  Context ctx = Context::root();
  ctx.deadline = Context::Clock::now() + 5s;  // published while handling a request
  REQUIRE(m.publish(OrderPlaced{"A-1", 1}, ctx));
  // The handler records the header after the deadline: wait for both (the
  // header's list was read while still empty, a crash, on a loaded machine).
  REQUIRE(had_deadline.wait_size(1));
  REQUIRE(had_header.wait_size(1));
  CHECK_FALSE(had_deadline.items().front());
  CHECK_FALSE(had_header.items().front());
}

TEST_CASE("the delivery carries the wire subject, headers, body and a per-type sequence") {
  InMemoryTransport transport({.prefix = "shop"});
  Mediator m;
  m.attach(transport);
  struct Seen {
    std::string subject, body, type, content_type;
    std::uint64_t sequence;
    int attempt;
  };
  Recorder<Seen> seen;
  auto sub = transport.subscribe("OrderPlaced", opts("raw"), [&](catga::Delivery& d) -> catga::Status {
    seen.add({std::string(d.subject()), std::string(d.body()), std::string(d.header(catga::wire::kType).value_or("")),
              std::string(d.header(catga::wire::kContentType).value_or("")), d.sequence(), d.attempt()});
    return {};
  });
  REQUIRE(sub);
  Recorder<std::uint64_t> shipped;
  auto sub2 = transport.subscribe("OrderShipped", opts("raw"), [&](catga::Delivery& d) -> catga::Status {
    shipped.add(d.sequence());
    return {};
  });
  REQUIRE(sub2);

  REQUIRE(m.publish(OrderPlaced{"A-1", 1}));
  REQUIRE(m.publish(OrderShipped{"A-1"}));
  REQUIRE(m.publish(OrderPlaced{"A-2", 2}));
  REQUIRE(m.publish(OrderPlaced{"A-3", 3}));
  REQUIRE(seen.wait_size(3));
  REQUIRE(shipped.wait_size(1));

  auto items = seen.items();
  std::sort(items.begin(), items.end(), [](const Seen& a, const Seen& b) { return a.sequence < b.sequence; });
  CHECK(items[0].subject == "shop.evt.OrderPlaced");
  CHECK(items[0].type == "OrderPlaced");
  CHECK(items[0].content_type == "application/json");
  CHECK(nlohmann::json::parse(items[0].body) == nlohmann::json(OrderPlaced{"A-1", 1}));
  CHECK(items[0].attempt == 1);
  // Sequences count per type: OrderShipped does not consume OrderPlaced numbers.
  CHECK(items[0].sequence == 1);
  CHECK(items[1].sequence == 2);
  CHECK(items[2].sequence == 3);
  CHECK(shipped.items().front() == 1);
}

TEST_CASE("members of a group share the events; every group gets all of them") {
  InMemoryTransport transport;
  Mediator m;
  m.attach(transport);
  constexpr int kEvents = 3000;
  Recorder<std::pair<int, std::string>> billing;  // (member, order id)
  Recorder<std::string> audit;
  std::vector<Subscription> subs;
  for (int member = 0; member < 3; ++member) {
    subs.push_back(m.subscribe<OrderPlaced>(opts("billing"), [&billing, member](const OrderPlaced& e) {
                      billing.add({member, e.order_id});
                    }).value());
  }
  subs.push_back(
      m.subscribe<OrderPlaced>(opts("audit"), [&](const OrderPlaced& e) { audit.add(e.order_id); }).value());

  for (int i = 0; i < kEvents; ++i) REQUIRE(m.publish(OrderPlaced{"o-" + std::to_string(i), i}));
  REQUIRE(billing.wait_size(kEvents));
  REQUIRE(audit.wait_size(kEvents));
  REQUIRE(transport.wait_idle(kWaitMs));

  std::map<std::string, int> handled;
  std::map<int, int> per_member;
  for (const auto& [member, id] : billing.items()) {
    ++handled[id];
    ++per_member[member];
  }
  CHECK(billing.size() == kEvents);
  CHECK(handled.size() == kEvents);
  CHECK(std::all_of(handled.begin(), handled.end(), [](const auto& kv) { return kv.second == 1; }));
  CHECK(per_member.size() == 3);
  for (const auto& [member, n] : per_member) CHECK(n > 0);

  std::set<std::string> audited;
  for (const auto& id : audit.items()) audited.insert(id);
  CHECK(audit.size() == kEvents);
  CHECK(audited.size() == kEvents);

  auto stats = transport.group_stats("OrderPlaced", "billing");
  REQUIRE(stats);
  CHECK(stats->members == 3);
  CHECK(stats->delivered == kEvents);
  CHECK(stats->acked == kEvents);
  CHECK(stats->redelivered == 0);
  CHECK(stats->pending == 0);
  CHECK(stats->in_flight == 0);
}

TEST_CASE("several workers of one subscription run handlers concurrently") {
  InMemoryTransport transport;
  Mediator m;
  m.attach(transport);
  Gate both_running;
  std::atomic<int> running{0};
  Recorder<bool> overlapped;
  auto sub = m.subscribe<OrderPlaced>(opts("g", 2), [&](const OrderPlaced&) {
                if (++running == 2) both_running.open();
                // True only if the other call starts while this one is still running.
                overlapped.add(both_running.wait());
              }).value();
  REQUIRE(m.publish(OrderPlaced{"a", 1}));
  REQUIRE(m.publish(OrderPlaced{"b", 2}));
  REQUIRE(overlapped.wait_size(2, kWait * 2));
  CHECK(overlapped.items() == std::vector<bool>{true, true});
}

TEST_CASE("a new group starts with the events published after it was created") {
  InMemoryTransport transport;
  Mediator m;
  m.attach(transport);
  REQUIRE(m.publish(OrderPlaced{"before", 1}));  // no group yet: kept by nobody
  Recorder<std::string> got;
  auto sub = m.subscribe<OrderPlaced>(opts("late"), [&](const OrderPlaced& e) { got.add(e.order_id); }).value();
  REQUIRE(m.publish(OrderPlaced{"after", 2}));
  REQUIRE(got.wait_size(1));
  REQUIRE(transport.wait_idle(kWaitMs));
  CHECK(got.items() == std::vector<std::string>{"after"});
}

TEST_CASE("a group without members keeps its events until a member joins, up to max_pending") {
  InMemoryTransport transport({.max_pending = 3});
  Mediator m;
  m.attach(transport);
  Recorder<std::string> got;
  auto handler = [&](const OrderPlaced& e) { got.add(e.order_id); };
  m.subscribe<OrderPlaced>(opts("billing"), handler).value().stop();  // the group now exists, empty

  for (int i = 0; i < 3; ++i) REQUIRE(m.publish(OrderPlaced{"o-" + std::to_string(i), i}));
  auto full = m.publish(OrderPlaced{"o-3", 3});
  REQUIRE_FALSE(full);
  CHECK(full.error().code == catga::errc::unavailable);
  CHECK(full.error().retryable);
  CHECK(full.error().message.find("billing") != std::string::npos);
  auto stats = transport.group_stats("OrderPlaced", "billing");
  REQUIRE(stats);
  CHECK(stats->members == 0);
  CHECK(stats->pending == 3);
  CHECK_FALSE(transport.wait_idle(1ms));
  CHECK(got.size() == 0);

  auto sub = m.subscribe<OrderPlaced>(opts("billing"), handler).value();
  REQUIRE(got.wait_size(3));
  REQUIRE(transport.wait_idle(kWaitMs));
  auto ids = got.items();
  std::sort(ids.begin(), ids.end());
  CHECK(ids == std::vector<std::string>{"o-0", "o-1", "o-2"});
  REQUIRE(m.publish(OrderPlaced{"o-4", 4}));  // room again
  REQUIRE(got.wait_size(4));
}

TEST_CASE("a handler can publish: the new event is a child of the one being handled") {
  InMemoryTransport transport;
  Mediator m;
  m.attach(transport);
  Recorder<Context> placed;
  Recorder<std::pair<OrderShipped, Context>> shipped;
  auto s1 = m.subscribe<OrderPlaced>(opts("shipping"), [&](const OrderPlaced& e, Context& ctx) -> catga::Status {
               placed.add(ctx);
               return m.publish(OrderShipped{e.order_id});
             }).value();
  auto s2 = m.subscribe<OrderShipped>(opts("mail"), [&](const OrderShipped& e, Context& ctx) {
               shipped.add({e, ctx});
             }).value();

  for (int i = 0; i < 50; ++i) REQUIRE(m.publish(OrderPlaced{"o-" + std::to_string(i), i}));
  REQUIRE(shipped.wait_size(50));
  REQUIRE(transport.wait_idle(kWaitMs));

  std::map<std::string, Context> parents;
  for (const auto& c : placed.items()) parents[c.message_id.text().str()] = c;
  for (const auto& [e, ctx] : shipped.items()) {
    auto parent = parents.find(ctx.causation_id.text().str());
    REQUIRE(parent != parents.end());
    CHECK(ctx.correlation_id == parent->second.correlation_id);
    CHECK(ctx.trace.trace_lo == parent->second.trace.trace_lo);
  }
  CHECK(transport.group_stats("OrderPlaced", "shipping")->acked == 50);
}

TEST_CASE("subscribe rejects unusable options") {
  InMemoryTransport transport;
  auto ok = [](catga::Delivery&) -> catga::Status { return {}; };
  auto no_group = transport.subscribe("OrderPlaced", {}, ok);
  REQUIRE_FALSE(no_group);
  CHECK(no_group.error().code == catga::errc::validation);
  auto no_workers = transport.subscribe("OrderPlaced", opts("g", 0), ok);
  REQUIRE_FALSE(no_workers);
  CHECK(no_workers.error().code == catga::errc::validation);
  auto no_handler = transport.subscribe("OrderPlaced", opts("g"), catga::DeliveryHandler{});
  REQUIRE_FALSE(no_handler);
  CHECK(no_handler.error().code == catga::errc::validation);
}

TEST_CASE("after shutdown publishing fails and subscriptions may outlive the transport") {
  auto transport = std::make_unique<InMemoryTransport>();
  Mediator m;
  m.attach(*transport);
  Recorder<std::string> got;
  auto sub = m.subscribe<OrderPlaced>(opts("g"), [&](const OrderPlaced& e) { got.add(e.order_id); }).value();
  REQUIRE(m.publish(OrderPlaced{"a", 1}));
  REQUIRE(got.wait_size(1));

  transport->shutdown();
  auto s = m.publish(OrderPlaced{"b", 2});
  REQUIRE_FALSE(s);
  CHECK(s.error().code == catga::errc::unavailable);
  auto late = m.subscribe<OrderPlaced>(opts("g"), [](const OrderPlaced&) {});
  REQUIRE_FALSE(late);
  CHECK(late.error().code == catga::errc::unavailable);

  m.detach();
  transport.reset();
  sub.stop();  // the subscription was stopped by shutdown; stopping again is harmless
  CHECK_FALSE(sub.active());
  CHECK(got.size() == 1);
}
