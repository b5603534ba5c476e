#include <doctest/doctest.h>

#include <chrono>
#include <vector>

#include "catga/pipeline/clock.hpp"
#include "catga/pipeline/retry.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using pt::Add;
using pt::Ship;

TEST_CASE("ManualClock: sleep_for advances time at once and records the sleeps") {
  catga::ManualClock clock;
  const auto t0 = clock.now();
  clock.sleep_for(5s);
  clock.sleep_for(250ms);
  CHECK(clock.now() - t0 == 5250ms);
  CHECK(clock.sleeps() == std::vector<catga::Clock::duration>{5s, 250ms});
  clock.advance(1s);
  CHECK(clock.now() - t0 == 6250ms);
  CHECK(clock.sleeps().size() == 2);  // advance is not a sleep
  clock.clear_sleeps();
  CHECK(clock.sleeps().empty());
  clock.set(t0);
  CHECK(clock.now() == t0);
}

TEST_CASE("SystemClock: now is steady time") {
  const auto& clock = catga::Clock::system();
  REQUIRE(clock);
  const auto a = std::chrono::steady_clock::now();
  const auto b = clock->now();
  const auto c = std::chrono::steady_clock::now();
  CHECK(a <= b);
  CHECK(b <= c);
  clock->sleep_for(0ns);  // returns
}

namespace {

struct RetryFixture {
  std::shared_ptr<catga::ManualClock> clock = std::make_shared<catga::ManualClock>();
  catga::Mediator mediator;
  std::vector<int> attempts;  // ctx.attempt seen by each handler call

  std::shared_ptr<catga::RetryBehavior> use_retry(catga::RetryOptions o) {
    o.clock = clock;
    if (!o.seed) o.seed = 42;
    auto r = std::make_shared<catga::RetryBehavior>(o);
    mediator.use(r);
    return r;
  }
};

}  // namespace

TEST_CASE("RetryBehavior: retries retryable errors, attempt visible in Context, delays within jitter bounds") {
  RetryFixture f;
  f.use_retry({.max_attempts = 5, .initial_delay = 100ms, .multiplier = 2.0, .max_delay = 10s});
  f.mediator.handle<Add>([&](const Add& a, catga::Context& ctx) -> catga::Result<int> {
    f.attempts.push_back(ctx.attempt);
    if (ctx.attempt < 3) return pt::busy();
    return a.x + a.y;
  });

  auto r = f.mediator.send(Add{2, 3});
  REQUIRE(r.ok());
  CHECK(*r == 5);
  CHECK(f.attempts == std::vector<int>{1, 2, 3});
  const auto sleeps = f.clock->sleeps();
  REQUIRE(sleeps.size() == 2);
  CHECK(sleeps[0] >= 0ns);
  CHECK(sleeps[0] <= 100ms);
  CHECK(sleeps[1] >= 0ns);
  CHECK(sleeps[1] <= 200ms);
}

TEST_CASE("RetryBehavior: full jitter stays within min(max_delay, initial*mult^(n-1)) and varies") {
  RetryFixture f;
  auto retry = f.use_retry({.max_attempts = 12, .initial_delay = 10ms, .multiplier = 3.0, .max_delay = 500ms});
  int calls = 0;
  f.mediator.handle<Ship>([&](const Ship&) -> catga::Status {
    ++calls;
    return pt::busy();
  });

  auto s = f.mediator.send(Ship{"o-1"});
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().code == "busy");
  CHECK(calls == 12);
  const auto sleeps = f.clock->sleeps();
  REQUIRE(sleeps.size() == 11);
  bool below_cap = false;
  for (std::size_t i = 0; i < sleeps.size(); ++i) {
    const int n = static_cast<int>(i) + 1;
    const auto cap = retry->max_delay_after(n);
    CHECK(cap <= 500ms);
    CHECK(sleeps[i] >= 0ns);
    CHECK(sleeps[i] <= cap);
    if (sleeps[i] < cap * 99 / 100) below_cap = true;
  }
  CHECK(below_cap);  // jittered, not plain exponential
  CHECK(retry->max_delay_after(1) == 10ms);
  CHECK(retry->max_delay_after(2) == 30ms);
  CHECK(retry->max_delay_after(3) == 90ms);
  CHECK(retry->max_delay_after(4) == 270ms);
  CHECK(retry->max_delay_after(5) == 500ms);
  CHECK(retry->max_delay_after(200) == 500ms);  // no overflow
}

TEST_CASE("RetryBehavior: the same seed gives the same delays") {
  auto run = [](std::uint64_t seed) {
    RetryFixture f;
    f.use_retry({.max_attempts = 6, .initial_delay = 100ms, .seed = seed});
    f.mediator.handle<Ship>([](const Ship&) -> catga::Status { return pt::busy(); });
    (void)f.mediator.send(Ship{});
    return f.clock->sleeps();
  };
  CHECK(run(7) == run(7));
  CHECK(run(7) != run(8));
}

TEST_CASE("RetryBehavior: non-retryable errors are not retried") {
  RetryFixture f;
  f.use_retry({.max_attempts = 5});
  int calls = 0;
  f.mediator.handle<Ship>([&](const Ship&) -> catga::Status {
    ++calls;
    return catga::make_error("out_of_stock", "none left", false);
  });
  auto s = f.mediator.send(Ship{});
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().code == "out_of_stock");
  CHECK(calls == 1);
  CHECK(f.clock->sleeps().empty());
}

TEST_CASE("RetryBehavior: max_attempts is respected and the last error returned") {
  RetryFixture f;
  f.use_retry({.max_attempts = 4, .initial_delay = 1ms});
  int calls = 0;
  f.mediator.handle<Ship>([&](const Ship&) -> catga::Status {
    ++calls;
    return catga::make_error("busy", "call " + std::to_string(calls), true);
  });
  auto s = f.mediator.send(Ship{});
  REQUIRE_FALSE(s.ok());
  CHECK(calls == 4);
  CHECK(s.error().message == "call 4");
  CHECK(f.clock->sleeps().size() == 3);
}

TEST_CASE("RetryBehavior: a deferral's retry_after is waited, not the shorter backoff") {
  RetryFixture f;
  f.use_retry({.max_attempts = 3, .initial_delay = 1ms});
  int calls = 0;
  f.mediator.handle<Ship>([&](const Ship&) -> catga::Status {
    if (++calls > 1) return {};
    auto e = catga::make_error(catga::errc::deferred, "claimed by another consumer", true);
    e.retry_after = 1500ms;
    return e;
  });
  REQUIRE(f.mediator.send(Ship{}).ok());
  CHECK(calls == 2);
  REQUIRE(f.clock->sleeps().size() == 1);
  CHECK(f.clock->sleeps()[0] == std::chrono::nanoseconds(1500ms));
}

TEST_CASE("RetryBehavior: success on the first attempt neither sleeps nor retries") {
  RetryFixture f;
  f.use_retry({});
  int calls = 0;
  f.mediator.handle<Add>([&](const Add& a) {
    ++calls;
    return a.x * a.y;
  });
  CHECK(f.mediator.send(Add{4, 5}).value() == 20);
  CHECK(calls == 1);
  CHECK(f.clock->sleeps().empty());
}

TEST_CASE("RetryBehavior: handler exceptions (retryable by default) are retried") {
  RetryFixture f;
  f.use_retry({.max_attempts = 3, .initial_delay = 1ms});
  int calls = 0;
  f.mediator.handle<Add>([&](const Add&) -> int {
    if (++calls < 3) throw std::runtime_error("flaky");
    return 1;
  });
  CHECK(f.mediator.send(Add{}).value() == 1);
  CHECK(calls == 3);
}

TEST_CASE("RetryBehavior: never sleeps past the context deadline") {
  SUBCASE("deadline already reached: one call, no sleep") {
    RetryFixture f;
    f.use_retry({.max_attempts = 5, .initial_delay = 100ms});
    int calls = 0;
    f.mediator.handle<Ship>([&](const Ship&) -> catga::Status {
      ++calls;
      return pt::busy();
    });
    auto ctx = catga::Context::root();
    ctx.deadline = f.clock->now();
    auto s = f.mediator.send(Ship{}, ctx);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().code == "busy");  // the last error, documented choice
    CHECK(calls == 1);
    CHECK(f.clock->sleeps().empty());
  }
  SUBCASE("deadline in 250ms with delays up to 100ms: stops before it") {
    RetryFixture f;
    f.use_retry({.max_attempts = 1000, .initial_delay = 100ms, .multiplier = 1.0, .max_delay = 100ms});
    int calls = 0;
    f.mediator.handle<Ship>([&](const Ship&) -> catga::Status {
      ++calls;
      return pt::busy();
    });
    auto ctx = catga::Context::root();
    const auto start = f.clock->now();
    ctx.deadline = start + 250ms;
    auto s = f.mediator.send(Ship{}, ctx);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().code == "busy");
    CHECK(calls >= 2);    // the first delay (<= 100ms) fits
    CHECK(calls < 1000);  // the deadline, not max_attempts, stopped it
    CHECK(f.clock->now() < ctx.deadline);
    catga::Clock::duration slept{};
    for (auto d : f.clock->sleeps()) slept += d;
    CHECK(slept < 250ms);
  }
}

TEST_CASE("RetryBehavior: restores the caller's attempt afterwards") {
  RetryFixture f;
  f.use_retry({.max_attempts = 3, .initial_delay = 1ms});
  catga::Context ctx = catga::Context::root();
  ctx.attempt = 7;
  std::vector<int> seen;
  auto handler = [&](const Ship&, catga::Context& c) -> catga::Status {
    seen.push_back(c.attempt);
    return c.attempt < 2 ? catga::Status(pt::busy()) : catga::Status();
  };
  Ship msg{"x"};
  CHECK(f.mediator.dispatch(msg, ctx, "", handler).ok());
  CHECK(seen == std::vector<int>{1, 2});
  CHECK(ctx.attempt == 7);
}
