// Context: fresh ids, inheritance by child messages, trace, deadline, headers.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "test_messages.hpp"

using namespace catga_test;
using namespace std::chrono_literals;

namespace {

struct IdHash {
  std::size_t operator()(const catga::MessageId& id) const noexcept {
    return std::hash<std::string_view>{}(id.text().view());
  }
};

}  // namespace

TEST_CASE("a root context starts a conversation") {
  const auto ctx = catga::Context::root();
  CHECK(ctx.message_id);
  CHECK(ctx.message_id.is_binary());
  CHECK(ctx.correlation_id == ctx.message_id);
  CHECK(ctx.causation_id.is_nil());
  CHECK(ctx.trace.valid());
  CHECK(ctx.trace.parent_span_id == 0);
  CHECK_FALSE(ctx.has_deadline());
  CHECK(ctx.attempt == 1);
  CHECK(ctx.headers.empty());
  CHECK(ctx.remaining() == catga::Context::Clock::duration::max());
}

TEST_CASE("generated message ids are unique across threads") {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25'000;
  std::vector<std::vector<catga::MessageId>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&ids, t] {
      ids[t].reserve(kPerThread);
      for (int i = 0; i < kPerThread; ++i) ids[t].push_back(catga::Context::root().message_id);
    });
  }
  for (auto& th : threads) th.join();
  std::unordered_set<catga::MessageId, IdHash> all;
  for (const auto& v : ids) {
    for (const auto& id : v) all.insert(id);
  }
  CHECK(all.size() == static_cast<std::size_t>(kThreads) * kPerThread);
  CHECK(all.count(catga::MessageId{}) == 0);
}

TEST_CASE("every dispatch gets a fresh message id and its type") {
  catga::Mediator m;
  std::vector<catga::MessageId> ids;
  std::vector<std::string> types;
  m.handle<Add>([&](const Add& a, catga::Context& ctx) {
    ids.push_back(ctx.message_id);
    types.emplace_back(ctx.message_type);
    CHECK(ctx.correlation_id == ctx.message_id);  // each top-level send is a root
    CHECK(ctx.causation_id.is_nil());
    return a.x;
  });
  for (int i = 0; i < 3; ++i) REQUIRE(m.send(Add{i, 0}).ok());
  REQUIRE(ids.size() == 3);
  CHECK(ids[0] != ids[1]);
  CHECK(ids[1] != ids[2]);
  CHECK(ids[0] != ids[2]);
  CHECK(types == std::vector<std::string>(3, "Add"));
}

TEST_CASE("a message sent from inside a handler is a child of the current one") {
  catga::Mediator m;
  std::optional<catga::Context> outer;
  std::optional<catga::Context> inner;
  std::optional<catga::Context> event;
  m.handle<ShipOrder>([&](const ShipOrder&, catga::Context& ctx) { inner = ctx; });
  m.on<OrderPlaced>([&](const OrderPlaced&, catga::Context& ctx) { event = ctx; });
  m.handle<PlaceOrder>([&](const PlaceOrder&, catga::Context& ctx) -> catga::Result<std::string> {
    outer = ctx;
    if (auto s = m.send(ShipOrder{"o-1", 1}); !s) return std::move(s).error();
    if (auto s = m.publish(OrderPlaced{"o-1", 1}); !s) return std::move(s).error();
    return std::string("o-1");
  });

  auto root = catga::Context::root();
  root.deadline = catga::Context::Clock::now() + 1h;
  root.headers.set("Tenant", "acme");
  const auto deadline = root.deadline;
  REQUIRE(m.send(PlaceOrder{}, root).ok());
  REQUIRE(outer);
  REQUIRE(inner);
  REQUIRE(event);

  // The outer handler ran with the context we passed.
  CHECK(outer->message_id == root.message_id);
  CHECK(outer->headers.get("Tenant") == std::optional<std::string_view>("acme"));

  for (const auto* child : {&*inner, &*event}) {
    CHECK(child->message_id);
    CHECK(child->message_id != outer->message_id);
    CHECK(child->correlation_id == outer->correlation_id);
    CHECK(child->causation_id == outer->message_id);
    CHECK(child->trace.trace_hi == outer->trace.trace_hi);
    CHECK(child->trace.trace_lo == outer->trace.trace_lo);
    CHECK(child->trace.parent_span_id == outer->trace.span_id);
    CHECK(child->trace.span_id != outer->trace.span_id);
    CHECK(child->trace.span_id != 0);
    CHECK(child->deadline == deadline);
  }
  CHECK(inner->message_id != event->message_id);
  CHECK(inner->message_type == "ShipOrder");
  CHECK(event->message_type == "OrderPlaced");
}

TEST_CASE("tracestate travels with the trace to child messages; other headers stay with their message") {
  auto parent = catga::Context::root();
  parent.headers.set("tracestate", "vendor=abc");
  parent.headers.set("Tenant", "acme");
  parent.headers.set("Catga-Replayed", "7");
  const auto child = parent.child();
  CHECK(child.headers.get("tracestate") == std::optional<std::string_view>("vendor=abc"));
  CHECK(child.headers.size() == 1);
  // Two hops: still there.
  CHECK(child.child().headers.get("tracestate") == std::optional<std::string_view>("vendor=abc"));
}

TEST_CASE("grandchildren keep the correlation id and chain causation") {
  catga::Mediator m;
  std::vector<catga::Context> seen;
  m.handle<Add>([&](const Add& a, catga::Context& ctx) -> catga::Result<int> {
    seen.push_back(ctx);
    if (a.x == 0) return 0;
    return m.send(Add{a.x - 1, 0});
  });
  REQUIRE(m.send(Add{2, 0}).ok());
  REQUIRE(seen.size() == 3);
  CHECK(seen[1].causation_id == seen[0].message_id);
  CHECK(seen[2].causation_id == seen[1].message_id);
  CHECK(seen[2].correlation_id == seen[0].message_id);
  CHECK(seen[2].trace.trace_lo == seen[0].trace.trace_lo);
  CHECK(seen[2].trace.parent_span_id == seen[1].trace.span_id);
}

TEST_CASE("the current context is visible inside a handler only") {
  catga::Mediator m;
  CHECK(catga::Context::current() == nullptr);
  const catga::Context* during = nullptr;
  catga::MessageId handler_id;
  m.handle<ShipOrder>([&](const ShipOrder&, catga::Context& ctx) {
    during = catga::Context::current();
    handler_id = ctx.message_id;
    CHECK(during == &ctx);
  });
  REQUIRE(m.send(ShipOrder{}).ok());
  REQUIRE(during != nullptr);
  CHECK(catga::Context::current() == nullptr);
  // Outside a handler, next() starts a new conversation.
  auto fresh = catga::Context::next();
  CHECK(fresh.causation_id.is_nil());
  CHECK(fresh.correlation_id == fresh.message_id);
  CHECK(fresh.message_id != handler_id);
}

TEST_CASE("CurrentContextScope nests and restores") {
  auto a = catga::Context::root();
  auto b = catga::Context::root();
  {
    catga::CurrentContextScope sa(a);
    CHECK(catga::Context::current() == &a);
    {
      catga::CurrentContextScope sb(b);
      CHECK(catga::Context::current() == &b);
      auto n = catga::Context::next();
      CHECK(n.causation_id == b.message_id);
    }
    CHECK(catga::Context::current() == &a);
  }
  CHECK(catga::Context::current() == nullptr);
}

TEST_CASE("child() of a context without a trace starts one") {
  catga::Context bare;
  bare.message_id = catga::MessageId::from_parts(1, 2);
  const auto child = bare.child();
  CHECK(child.trace.valid());
  CHECK(child.trace.parent_span_id == 0);
  CHECK(child.causation_id == bare.message_id);
  CHECK(child.correlation_id == bare.message_id);  // no correlation: the parent starts it
}

TEST_CASE("deadlines: remaining and expired against a given time") {
  using Clock = catga::Context::Clock;
  const auto t0 = Clock::time_point{} + 100s;
  catga::Context ctx;
  ctx.deadline = t0 + 2s;
  CHECK(ctx.has_deadline());
  CHECK_FALSE(ctx.expired(t0));
  CHECK(ctx.remaining(t0) == std::chrono::duration_cast<Clock::duration>(2s));
  CHECK(ctx.expired(t0 + 2s));
  CHECK(ctx.remaining(t0 + 3s) == Clock::duration::zero());
  CHECK(ctx.child().deadline == ctx.deadline);
  CHECK(ctx.child().has_deadline());
}

TEST_CASE("headers: set, overwrite, get, erase") {
  catga::Headers h;
  CHECK(h.empty());
  h.set("Tenant", "acme");
  h.set("Region", "eu");
  h.set("Tenant", "globex");
  CHECK(h.size() == 2);
  CHECK(h.get("Tenant") == std::optional<std::string_view>("globex"));
  CHECK_FALSE(h.get("tenant").has_value());  // case-sensitive
  CHECK(h.erase("Region"));
  CHECK_FALSE(h.erase("Region"));
  CHECK(h.size() == 1);
  std::vector<std::string> keys;
  for (const auto& [k, v] : h) keys.push_back(k + "=" + v);
  CHECK(keys == std::vector<std::string>{"Tenant=globex"});
  h.clear();
  CHECK(h.empty());
}

TEST_CASE("headers are not inherited by children; the caller decides") {
  auto root = catga::Context::root();
  root.headers.set("Tenant", "acme");
  CHECK(root.child().headers.empty());
}
