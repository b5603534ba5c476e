#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "catga/pipeline/idempotency.hpp"
#include "catga/pipeline/in_memory_idempotency_store.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using pt::PlaceOrder;
using State = catga::IdempotencyClaim::State;

namespace {

// Waits for `done` up to 30 s (generous for a loaded machine).
template <class F>
bool eventually(F done) {
  const auto end = std::chrono::steady_clock::now() + 30s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::yield();
  }
  return true;
}

// Counts the waits, so a test can let the owner finish only once a duplicate
// is really waiting.
class ObservedStore final : public catga::IdempotencyStore {
 public:
  explicit ObservedStore(std::shared_ptr<catga::IdempotencyStore> inner) : inner_(std::move(inner)) {}
  catga::Result<catga::IdempotencyClaim> claim(std::string_view key, duration lease) override {
    return inner_->claim(key, lease);
  }
  catga::Result<catga::IdempotencyClaim> wait(std::string_view key, duration lease, time_point deadline) override {
    waits.fetch_add(1);
    return inner_->wait(key, lease, deadline);
  }
  catga::Status complete(std::string_view key, std::uint64_t token, catga::IdempotencyOutcome outcome,
                         duration ttl) override {
    return inner_->complete(key, token, std::move(outcome), ttl);
  }
  catga::Status release(std::string_view key, std::uint64_t token) override { return inner_->release(key, token); }

  std::atomic<int> waits{0};

 private:
  std::shared_ptr<catga::IdempotencyStore> inner_;
};

struct IdemFixture {
  std::shared_ptr<catga::ManualClock> clock = std::make_shared<catga::ManualClock>();
  std::shared_ptr<catga::InMemoryIdempotencyStore> store;
  catga::Mediator mediator;
  std::atomic<int> calls{0};

  explicit IdemFixture(catga::IdempotencyOptions o = {}, std::size_t max_entries = 1000) {
    store = std::make_shared<catga::InMemoryIdempotencyStore>(
        catga::InMemoryIdempotencyStoreOptions{.max_entries = max_entries, .shards = 1, .clock = clock});
    if (!o.store) o.store = store;
    o.clock = clock;
    mediator.use(std::make_shared<catga::IdempotencyBehavior>(std::move(o)));
  }
};

}  // namespace

TEST_CASE("IdempotencyBehavior: a second send with the same message id returns the stored result") {
  IdemFixture f;
  f.mediator.handle<PlaceOrder>(
      [&](const PlaceOrder& c) { return "order-" + c.customer + "-" + std::to_string(f.calls.fetch_add(1) + 1); });
  auto ctx = catga::Context::root();
  auto first = f.mediator.send(PlaceOrder{"ann", 5}, ctx);
  auto second = f.mediator.send(PlaceOrder{"ann", 5}, ctx);
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  CHECK(*first == "order-ann-1");
  CHECK(*second == "order-ann-1");
  CHECK(f.calls == 1);
  // A new message id is a new message.
  CHECK(f.mediator.send(PlaceOrder{"ann", 5}).value() == "order-ann-2");
  CHECK(f.calls == 2);
}

TEST_CASE("IdempotencyBehavior: void commands run once per message id") {
  IdemFixture f;
  f.mediator.handle<pt::Ship>([&](const pt::Ship&) { f.calls.fetch_add(1); });
  auto ctx = catga::Context::root();
  CHECK(f.mediator.send(pt::Ship{"o-1"}, ctx).ok());
  CHECK(f.mediator.send(pt::Ship{"o-1"}, ctx).ok());
  CHECK(f.calls == 1);
}

TEST_CASE("IdempotencyBehavior: failures are not stored, so a later retry runs") {
  IdemFixture f;
  f.mediator.handle<pt::Add>([&](const pt::Add& a) -> catga::Result<int> {
    const int n = f.calls.fetch_add(1) + 1;
    if (n == 1) return pt::busy();
    if (n == 2) return catga::make_error("rejected", "not now", false);
    return a.x + a.y + n;
  });
  auto ctx = catga::Context::root();
  auto r1 = f.mediator.send(pt::Add{1, 1}, ctx);
  REQUIRE_FALSE(r1.ok());
  CHECK(r1.error().code == "busy");
  auto r2 = f.mediator.send(pt::Add{1, 1}, ctx);
  REQUIRE_FALSE(r2.ok());
  CHECK(r2.error().code == "rejected");
  CHECK(f.mediator.send(pt::Add{1, 1}, ctx).value() == 5);
  CHECK(f.mediator.send(pt::Add{1, 1}, ctx).value() == 5);  // now stored
  CHECK(f.calls == 3);
}

TEST_CASE("IdempotencyBehavior: remember_failures stores non-retryable errors but never retryable ones") {
  IdemFixture f({.remember_failures = true});
  f.mediator.handle<pt::Add>([&](const pt::Add&) -> catga::Result<int> {
    const int n = f.calls.fetch_add(1) + 1;
    if (n == 1) return pt::busy();
    return catga::make_error("rejected", "not now", false);
  });
  auto ctx = catga::Context::root();
  CHECK(f.mediator.send(pt::Add{}, ctx).error().code == "busy");
  CHECK(f.mediator.send(pt::Add{}, ctx).error().code == "rejected");
  auto replayed = f.mediator.send(pt::Add{}, ctx);
  REQUIRE_FALSE(replayed.ok());
  CHECK(replayed.error() == catga::Error{"rejected", "not now", false});
  CHECK(f.calls == 2);
}

TEST_CASE("IdempotencyBehavior: stored outcomes expire after the TTL (manual clock)") {
  IdemFixture f({.ttl = 10min});
  f.mediator.handle<pt::Add>([&](const pt::Add&) { return f.calls.fetch_add(1) + 1; });
  auto ctx = catga::Context::root();
  CHECK(f.mediator.send(pt::Add{}, ctx).value() == 1);
  f.clock->advance(9min);
  CHECK(f.mediator.send(pt::Add{}, ctx).value() == 1);
  f.clock->advance(2min);
  CHECK(f.mediator.send(pt::Add{}, ctx).value() == 2);
  CHECK(f.calls == 2);
}

TEST_CASE("IdempotencyBehavior: the store's size bound forgets the oldest messages") {
  IdemFixture f({}, /*max_entries=*/2);
  f.mediator.handle<pt::Add>([&](const pt::Add&) { return f.calls.fetch_add(1) + 1; });
  auto a = catga::Context::root();
  auto b = catga::Context::root();
  auto c = catga::Context::root();
  CHECK(f.mediator.send(pt::Add{}, a).value() == 1);
  CHECK(f.mediator.send(pt::Add{}, b).value() == 2);
  CHECK(f.mediator.send(pt::Add{}, c).value() == 3);
  CHECK(f.store->size() == 2);
  CHECK(f.mediator.send(pt::Add{}, c).value() == 3);  // still remembered
  CHECK(f.mediator.send(pt::Add{}, a).value() == 4);  // evicted: runs again
  CHECK(f.calls == 4);
}

TEST_CASE("IdempotencyBehavior: 8 concurrent duplicates run the handler once and all get the same value") {
  IdemFixture f;
  constexpr int kThreads = 8;
  std::atomic<int> started{0};
  f.mediator.handle<PlaceOrder>([&](const PlaceOrder& c) {
    const int n = f.calls.fetch_add(1) + 1;
    // Hold the claim until every sender has started, so most really overlap.
    (void)eventually([&] { return started.load() == kThreads; });
    return "order-" + c.customer + "-" + std::to_string(n);
  });
  const auto ctx = catga::Context::root();
  std::vector<std::string> results(kThreads);
  std::vector<std::string> errors;
  std::mutex errors_mutex;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      started.fetch_add(1);
      auto r = f.mediator.send(PlaceOrder{"ann", 1}, ctx);
      if (r) {
        results[t] = *r;
      } else {
        std::lock_guard lock(errors_mutex);
        errors.push_back(r.error().code + ": " + r.error().message);
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(errors.empty());
  CHECK(f.calls == 1);
  for (const auto& r : results) CHECK(r == "order-ann-1");
}

TEST_CASE("IdempotencyBehavior: threads sending the same ids in different orders run each id once") {
  // Many ids claimed, waited on and completed from several threads at once:
  // the shard locks (and the store's fast path for binary ids) under
  // contention, with the general path taking the duplicates.
  auto store = std::make_shared<catga::InMemoryIdempotencyStore>(
      catga::InMemoryIdempotencyStoreOptions{.max_entries = 20'000, .shards = 4});
  catga::Mediator mediator;
  mediator.use(std::make_shared<catga::IdempotencyBehavior>(store));
  std::atomic<int> calls{0};
  mediator.handle<pt::Add>([&](const pt::Add&) { return calls.fetch_add(1) + 1; });

  constexpr int kIds = 2000;
  constexpr int kThreads = 4;
  std::vector<catga::Context> contexts;
  for (int i = 0; i < kIds; ++i) contexts.push_back(catga::Context::root());
  std::vector<std::vector<int>> seen(kThreads, std::vector<int>(kIds, 0));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int n = 0; n < kIds; ++n) {
        const int i = (n + t * kIds / kThreads) % kIds;  // each thread starts elsewhere
        auto r = mediator.send(pt::Add{}, contexts[i]);
        if (r) {
          seen[t][i] = *r;
        } else {
          failures.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  CHECK(calls == kIds);
  CHECK(store->size() == kIds);
  int disagreements = 0;
  for (int i = 0; i < kIds; ++i) {
    for (int t = 1; t < kThreads; ++t) disagreements += seen[t][i] != seen[0][i] ? 1 : 0;
  }
  CHECK(disagreements == 0);
}

TEST_CASE("IdempotencyBehavior: a waiting duplicate gets the owner's stored result") {
  auto observed = std::make_shared<ObservedStore>(std::make_shared<catga::InMemoryIdempotencyStore>());
  IdemFixture f({.store = observed});
  f.mediator.handle<pt::Add>([&](const pt::Add& a) {
    f.calls.fetch_add(1);
    CHECK(eventually([&] { return observed->waits.load() == 1; }));
    return a.x + a.y;
  });
  const auto ctx = catga::Context::root();
  catga::Result<int> owner = catga::make_error("unset", "");
  std::thread t([&] { owner = f.mediator.send(pt::Add{2, 2}, ctx); });
  REQUIRE(eventually([&] { return f.calls.load() == 1; }));
  auto dup = f.mediator.send(pt::Add{2, 2}, ctx);  // waits for the owner
  t.join();
  CHECK(owner.value() == 4);
  CHECK(dup.value() == 4);
  CHECK(f.calls == 1);
}

TEST_CASE("IdempotencyBehavior: when the owner fails, a waiting duplicate claims the key and runs") {
  auto observed = std::make_shared<ObservedStore>(std::make_shared<catga::InMemoryIdempotencyStore>());
  IdemFixture f({.store = observed});
  f.mediator.handle<pt::Add>([&](const pt::Add& a) -> catga::Result<int> {
    const int n = f.calls.fetch_add(1) + 1;
    if (n == 1) {
      CHECK(eventually([&] { return observed->waits.load() == 1; }));
      return pt::busy();
    }
    return a.x + a.y + 100;
  });
  const auto ctx = catga::Context::root();
  catga::Result<int> owner = 0;
  std::thread t([&] { owner = f.mediator.send(pt::Add{1, 2}, ctx); });
  REQUIRE(eventually([&] { return f.calls.load() == 1; }));
  auto dup = f.mediator.send(pt::Add{1, 2}, ctx);
  t.join();
  REQUIRE_FALSE(owner.ok());
  CHECK(owner.error().code == "busy");
  CHECK(dup.value() == 103);
  CHECK(f.calls == 2);
}

TEST_CASE("IdempotencyBehavior: a duplicate stops waiting at the context deadline or wait_timeout") {
  IdemFixture f({.wait_timeout = 20ms});
  f.mediator.handle<pt::Add>([&](const pt::Add&) { return f.calls.fetch_add(1) + 1; });
  auto ctx = catga::Context::root();
  ctx.message_id = catga::MessageId::parse("add-1").value();
  const std::string key = std::string(catga::message_info<pt::Add>().name) + ":add-1";
  auto held = f.store->claim(key, 1h).value();  // someone else is "running" it
  REQUIRE(held.state == State::claimed);

  // Deferred until the owner's lease runs out (then a crashed owner's claim
  // is taken over): transports redeliver it then and never dead-letter it.
  auto deferred = f.mediator.send(pt::Add{}, ctx);
  REQUIRE_FALSE(deferred.ok());
  CHECK(deferred.error().code == catga::errc::deferred);
  CHECK(deferred.error().retryable);
  CHECK(deferred.error().retry_after > 59min);
  CHECK(deferred.error().retry_after <= 1h + 1s);

  // The same when the context's deadline (a consumer's handler timeout) ends
  // the wait first. Before: `timeout`, which consumer groups count against
  // max_deliver, so a crashed owner's message was dead-lettered before its
  // lease ran out (seen in order_flow_chaos_cluster).
  ctx.deadline = f.clock->now() + 5ms;
  auto at_deadline = f.mediator.send(pt::Add{}, ctx);
  REQUIRE_FALSE(at_deadline.ok());
  CHECK(at_deadline.error().code == catga::errc::deferred);
  CHECK(at_deadline.error().retryable);
  CHECK(at_deadline.error().retry_after > 59min);
  CHECK(f.calls == 0);
}

TEST_CASE("IdempotencyBehavior: event handlers with distinct handler keys each run once") {
  IdemFixture f;
  std::atomic<int> mailer{0};
  std::atomic<int> billing{0};
  f.mediator.on<pt::OrderPlaced>([&](const pt::OrderPlaced&) { mailer.fetch_add(1); }, "mailer");
  f.mediator.on<pt::OrderPlaced>([&](const pt::OrderPlaced&) { billing.fetch_add(1); }, "billing");
  auto ctx = catga::Context::root();
  CHECK(f.mediator.publish(pt::OrderPlaced{"o-1"}, ctx).ok());
  CHECK(f.mediator.publish(pt::OrderPlaced{"o-1"}, ctx).ok());
  CHECK(mailer == 1);
  CHECK(billing == 1);
  const std::string prefix = std::string(catga::message_info<pt::OrderPlaced>().name) + ":";
  const std::string id = ctx.message_id.text().str();
  CHECK(f.store->claim(prefix + "mailer:" + id, 1min).value().state == State::completed);
  CHECK(f.store->claim(prefix + "billing:" + id, 1min).value().state == State::completed);
}

TEST_CASE("IdempotencyBehavior: consumer groups (handler keys) passed to dispatch do not collide") {
  IdemFixture f;
  int runs = 0;
  auto handler = [&](const pt::OrderPlaced&) { ++runs; };
  auto ctx = catga::Context::root();
  pt::OrderPlaced e{"o-9"};
  CHECK(f.mediator.dispatch(e, ctx, "billing", handler).ok());
  CHECK(f.mediator.dispatch(e, ctx, "shipping", handler).ok());
  CHECK(f.mediator.dispatch(e, ctx, "billing", handler).ok());  // redelivery to billing
  CHECK(runs == 2);
}

TEST_CASE("IdempotencyBehavior: a user key function (Idempotency-Key header) replaces the message id") {
  IdemFixture f({.key = catga::IdempotencyOptions::header_key("Idempotency-Key")});
  f.mediator.handle<pt::Add>([&](const pt::Add&) { return f.calls.fetch_add(1) + 1; });
  auto a = catga::Context::root();
  a.headers.set("Idempotency-Key", "client-req-1");
  auto b = catga::Context::root();  // another message id, same client key
  b.headers.set("Idempotency-Key", "client-req-1");
  CHECK(f.mediator.send(pt::Add{}, a).value() == 1);
  CHECK(f.mediator.send(pt::Add{}, b).value() == 1);
  auto no_header = catga::Context::root();  // falls back to the message id
  CHECK(f.mediator.send(pt::Add{}, no_header).value() == 2);
  CHECK(f.mediator.send(pt::Add{}, no_header).value() == 2);
  CHECK(f.calls == 2);
}

TEST_CASE("IdempotencyBehavior: an empty key from the key function skips idempotency") {
  IdemFixture f({.key = [](const catga::Invocation&) { return std::string(); }});
  f.mediator.handle<pt::Add>([&](const pt::Add&) { return f.calls.fetch_add(1) + 1; });
  auto ctx = catga::Context::root();
  CHECK(f.mediator.send(pt::Add{}, ctx).value() == 1);
  CHECK(f.mediator.send(pt::Add{}, ctx).value() == 2);
  CHECK(f.store->size() == 0);
}

TEST_CASE("IdempotencyBehavior: queries pass through unless include_queries") {
  {
    IdemFixture f;
    f.mediator.handle<pt::GetPrice>([&](const pt::GetPrice&) { return 1.5 * (f.calls.fetch_add(1) + 1); });
    auto ctx = catga::Context::root();
    CHECK(f.mediator.query(pt::GetPrice{"a"}, ctx).value() == 1.5);
    CHECK(f.mediator.query(pt::GetPrice{"a"}, ctx).value() == 3.0);
  }
  {
    IdemFixture f({.include_queries = true});
    f.mediator.handle<pt::GetPrice>([&](const pt::GetPrice&) { return 1.5 * (f.calls.fetch_add(1) + 1); });
    auto ctx = catga::Context::root();
    CHECK(f.mediator.query(pt::GetPrice{"a"}, ctx).value() == 1.5);
    CHECK(f.mediator.query(pt::GetPrice{"a"}, ctx).value() == 1.5);
  }
}

TEST_CASE("IdempotencyBehavior: a behavior that throws after the claim releases it") {
  IdemFixture f;
  bool explode = true;
  f.mediator.use(catga::make_behavior([&](catga::Invocation&, catga::Next next) -> catga::Status {
    if (explode) throw std::runtime_error("boom");
    return next();
  }));
  f.mediator.handle<pt::Add>([&](const pt::Add&) { return f.calls.fetch_add(1) + 1; });
  auto ctx = catga::Context::root();
  auto r = f.mediator.send(pt::Add{}, ctx);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == catga::errc::exception);
  explode = false;
  CHECK(f.mediator.send(pt::Add{}, ctx).value() == 1);  // not stuck "in progress"
}

TEST_CASE("IdempotencyBehavior: store errors fail the call without running the handler") {
  struct DownStore final : catga::IdempotencyStore {
    catga::Result<catga::IdempotencyClaim> claim(std::string_view, duration) override {
      return catga::make_error(catga::errc::unavailable, "kv down", true);
    }
    catga::Result<catga::IdempotencyClaim> wait(std::string_view, duration, time_point) override {
      return catga::make_error(catga::errc::unavailable, "kv down", true);
    }
    catga::Status complete(std::string_view, std::uint64_t, catga::IdempotencyOutcome, duration) override { return {}; }
    catga::Status release(std::string_view, std::uint64_t) override { return {}; }
  };
  IdemFixture f({.store = std::make_shared<DownStore>()});
  f.mediator.handle<pt::Add>([&](const pt::Add&) { return f.calls.fetch_add(1) + 1; });
  auto r = f.mediator.send(pt::Add{});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == catga::errc::unavailable);
  CHECK(r.error().retryable);
  CHECK(f.calls == 0);
}

namespace {

// complete() fails `failures` times with `error`, then passes through.
class FlakyCompleteStore final : public catga::IdempotencyStore {
 public:
  FlakyCompleteStore(int failures, catga::Error error)
      : inner_(std::make_shared<catga::InMemoryIdempotencyStore>()), failures_(failures), error_(std::move(error)) {}
  catga::Result<catga::IdempotencyClaim> claim(std::string_view key, duration lease) override {
    return inner_->claim(key, lease);
  }
  catga::Result<catga::IdempotencyClaim> wait(std::string_view key, duration lease, time_point deadline) override {
    return inner_->wait(key, lease, deadline);
  }
  catga::Status complete(std::string_view key, std::uint64_t token, catga::IdempotencyOutcome outcome,
                         duration ttl) override {
    completes.fetch_add(1);
    if (failures_ > 0) {
      --failures_;
      return error_;
    }
    return inner_->complete(key, token, std::move(outcome), ttl);
  }
  catga::Status release(std::string_view key, std::uint64_t token) override { return inner_->release(key, token); }

  std::atomic<int> completes{0};

 private:
  std::shared_ptr<catga::InMemoryIdempotencyStore> inner_;
  int failures_;
  catga::Error error_;
};

std::chrono::nanoseconds total(const std::vector<catga::Clock::duration>& sleeps) {
  std::chrono::nanoseconds sum{0};
  for (auto d : sleeps) sum += d;
  return sum;
}

}  // namespace

TEST_CASE("IdempotencyBehavior: a briefly unreachable store still gets the outcome (retried within the lease)") {
  auto flaky = std::make_shared<FlakyCompleteStore>(3, catga::make_error(catga::errc::unavailable, "kv down", true));
  IdemFixture f({.store = flaky, .lease = 8s});
  f.mediator.handle<pt::Add>([&](const pt::Add&) { return f.calls.fetch_add(1) + 1; });
  auto ctx = catga::Context::root();
  CHECK(f.mediator.send(pt::Add{}, ctx).value() == 1);
  CHECK(flaky->completes == 4);
  CHECK(f.clock->sleeps().size() == 3);
  CHECK(total(f.clock->sleeps()) < 6s);
  // Stored: the duplicate gets the result without running the handler.
  CHECK(f.mediator.send(pt::Add{}, ctx).value() == 1);
  CHECK(f.calls == 1);
}

TEST_CASE("IdempotencyBehavior: storing the outcome gives up at 3/4 of the lease; the handler's result stands") {
  auto down = std::make_shared<FlakyCompleteStore>(1 << 30, catga::make_error(catga::errc::unavailable, "kv down", true));
  IdemFixture f({.store = down, .lease = 8s});
  f.mediator.handle<pt::Add>([&](const pt::Add&) { return f.calls.fetch_add(1) + 1; });
  CHECK(f.mediator.send(pt::Add{}).value() == 1);
  CHECK(down->completes > 2);
  const auto waited = total(f.clock->sleeps());
  CHECK(waited == 6s);  // exactly up to 3/4 of the lease, never past it
}

TEST_CASE("IdempotencyBehavior: a non-retryable store error is not retried") {
  auto broken = std::make_shared<FlakyCompleteStore>(1 << 30, catga::make_error(catga::errc::conflict, "lost claim", false));
  IdemFixture f({.store = broken, .lease = 8s});
  f.mediator.handle<pt::Add>([&](const pt::Add&) { return f.calls.fetch_add(1) + 1; });
  CHECK(f.mediator.send(pt::Add{}).value() == 1);
  CHECK(broken->completes == 1);
  CHECK(f.clock->sleeps().empty());
}

TEST_CASE("IdempotencyBehavior: construction without a store throws") {
  CHECK_THROWS_AS(catga::IdempotencyBehavior(catga::IdempotencyOptions{}), catga::Exception);
}

TEST_CASE("IdempotencyBehavior: the key is '<Type>:<id text>', binary id or not") {
  // Through a store that is not the in-memory one (whose fast path keys
  // binary ids its own way): the keys every other store sees.
  auto store = std::make_shared<FlakyCompleteStore>(0, catga::Error{});
  catga::Mediator m;
  m.use(std::make_shared<catga::IdempotencyBehavior>(catga::IdempotencyOptions{.store = store}));
  int calls = 0;
  m.handle<pt::Add>([&](const pt::Add&) { return ++calls; });
  const std::string type(catga::message_info<pt::Add>().name);
  auto text_id = catga::Context::root();
  text_id.message_id = catga::MessageId::parse("order-17/attempt-a").value();
  CHECK(m.send(pt::Add{}, text_id).value() == 1);
  CHECK(store->claim(type + ":order-17/attempt-a", 1min).value().state == State::completed);

  auto hex_id = catga::Context::root();
  hex_id.message_id = catga::MessageId::parse("00000000000000ff0123456789abcdef").value();
  REQUIRE(hex_id.message_id.is_binary());
  CHECK(m.send(pt::Add{}, hex_id).value() == 2);
  CHECK(store->claim(type + ":00000000000000ff0123456789abcdef", 1min).value().state == State::completed);
  CHECK(calls == 2);
}

// Before: the key was the message id alone, so a command reusing another
// command's id was answered with that command's stored outcome (or failed to
// decode it) without running.
TEST_CASE("IdempotencyBehavior: an id reused by another message type runs that type's handler") {
  for (const bool in_memory : {true, false}) {
    CAPTURE(in_memory);
    std::shared_ptr<catga::IdempotencyStore> store;
    if (in_memory) {
      store = std::make_shared<catga::InMemoryIdempotencyStore>();
    } else {
      store = std::make_shared<FlakyCompleteStore>(0, catga::Error{});
    }
    catga::Mediator m;
    m.use(std::make_shared<catga::IdempotencyBehavior>(catga::IdempotencyOptions{.store = store}));
    int adds = 0, ships = 0;
    m.handle<pt::Add>([&](const pt::Add& a) { return ++adds + a.x; });
    m.handle<pt::Ship>([&](const pt::Ship&) { ++ships; });
    for (const bool binary : {true, false}) {
      auto ctx = catga::Context::root();
      if (!binary) ctx.message_id = catga::MessageId::parse("shared-id").value();
      CHECK(m.send(pt::Ship{"o-1"}, ctx).ok());
      auto r = m.send(pt::Add{100, 0}, ctx);  // same id, another type: runs, decodes
      REQUIRE(r.ok());
      CHECK(r.value() == 100 + adds);
      CHECK(m.send(pt::Add{100, 0}, ctx).value() == r.value());  // its own duplicate: stored
      CHECK(m.send(pt::Ship{"o-1"}, ctx).ok());
    }
    CHECK(adds == 2);
    CHECK(ships == 2);
  }
}

// The fast path is part of the store interface (IdempotencyStore::id_path),
// not a backdoor into InMemoryIdempotencyStore: a store of another type that
// offers one gets generated ids through it, and a waiting duplicate (the text
// path) finds the entry it made. Before: the behavior looked for the
// in-memory store by dynamic_cast, so a wrapping store never got the fast
// path (and id_path did not exist).
TEST_CASE("IdempotencyBehavior: a store offering an id path gets generated ids through it") {
  class CountingIds final : public catga::IdempotencyStore, private catga::IdempotencyIdPath {
   public:
    catga::Result<catga::IdempotencyClaim> claim(std::string_view key, duration lease) override {
      text_calls++;
      return inner.claim(key, lease);
    }
    catga::Result<catga::IdempotencyClaim> wait(std::string_view key, duration lease, time_point deadline) override {
      text_calls++;
      return inner.wait(key, lease, deadline);
    }
    catga::Status complete(std::string_view key, std::uint64_t token, catga::IdempotencyOutcome outcome,
                           duration ttl) override {
      return inner.complete(key, token, std::move(outcome), ttl);
    }
    catga::Status release(std::string_view key, std::uint64_t token) override { return inner.release(key, token); }
    catga::IdempotencyIdPath* id_path() noexcept override { return this; }

    Claim claim_id(std::uint64_t hi, std::uint64_t lo, duration lease) override {
      id_claims++;
      return inner.id_path()->claim_id(hi, lo, lease);
    }
    catga::Status complete_id(const Claim& c, const catga::Error* error, EncodeResult encode, const void* result,
                              duration ttl) override {
      id_completes++;
      return inner.id_path()->complete_id(c, error, encode, result, ttl);
    }
    void release_id(const Claim& c) noexcept override { inner.id_path()->release_id(c); }

    catga::InMemoryIdempotencyStore inner;
    std::atomic<int> text_calls{0}, id_claims{0}, id_completes{0};
  };
  auto store = std::make_shared<CountingIds>();
  catga::Mediator m;
  m.use(std::make_shared<catga::IdempotencyBehavior>(catga::IdempotencyOptions{.store = store}));
  std::atomic<int> calls{0};
  std::atomic<bool> go{false};
  m.handle<pt::Add>([&](const pt::Add& a) {
    while (!go.load()) std::this_thread::yield();
    return ++calls + a.x;
  });
  const auto ctx = catga::Context::root();
  REQUIRE(ctx.message_id.is_binary());
  catga::Result<int> first = catga::make_error("none", "not run");
  std::thread owner([&] { first = m.send(pt::Add{10, 0}, ctx); });
  REQUIRE(eventually([&] { return store->id_claims.load() == 1; }));
  // A duplicate while the owner runs: the id path says in progress, the
  // text path waits on the same entry and gets the owner's result.
  catga::Result<int> second = catga::make_error("none", "not run");
  std::thread duplicate([&] { second = m.send(pt::Add{10, 0}, ctx); });
  REQUIRE(eventually([&] { return store->text_calls.load() >= 2; }));  // its claim, then its wait
  go = true;
  owner.join();
  duplicate.join();
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  CHECK(*first == 11);
  CHECK(*second == 11);
  CHECK(calls == 1);
  CHECK(store->id_completes == 1);
  CHECK(store->id_claims == 2);  // the owner's and the duplicate's first try
}
