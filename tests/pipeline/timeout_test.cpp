#include <doctest/doctest.h>

#include <chrono>

#include "catga/pipeline/timeout.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using pt::Add;

namespace {

struct TimeoutFixture {
  std::shared_ptr<pt::CountingClock> clock = std::make_shared<pt::CountingClock>();
  catga::Mediator mediator;
  int calls = 0;

  explicit TimeoutFixture(std::optional<std::chrono::nanoseconds> default_timeout = std::nullopt) {
    mediator.use(std::make_shared<catga::TimeoutBehavior>(
        catga::TimeoutOptions{.default_timeout = default_timeout, .clock = clock}));
  }
  catga::ManualClock& time() { return clock->inner; }
};

}  // namespace

TEST_CASE("TimeoutBehavior: an expired deadline fails with timeout and the handler is not called") {
  TimeoutFixture f;
  f.mediator.handle<Add>([&](const Add&) { return ++f.calls; });
  auto ctx = catga::Context::root();
  ctx.deadline = f.time().now() - 1ms;
  auto r = f.mediator.send(Add{}, ctx);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == catga::errc::timeout);
  CHECK(r.error().retryable);
  CHECK(r.error().message.find("Add") != std::string::npos);
  CHECK(f.calls == 0);

  ctx.deadline = f.time().now();  // "now" counts as passed
  CHECK(f.mediator.send(Add{}, ctx).error().code == catga::errc::timeout);
  CHECK(f.calls == 0);
}

TEST_CASE("TimeoutBehavior: the default timeout sets the deadline, an earlier one is kept") {
  TimeoutFixture f(2s);
  catga::Context::Clock::time_point seen{};
  f.mediator.handle<Add>([&](const Add&, catga::Context& ctx) {
    seen = ctx.deadline;
    return ++f.calls;
  });
  const auto now = f.time().now();
  CHECK(f.mediator.send(Add{}).value() == 1);
  CHECK(seen == now + 2s);

  auto ctx = catga::Context::root();
  ctx.deadline = now + 500ms;
  CHECK(f.mediator.send(Add{}, ctx).value() == 2);
  CHECK(seen == now + 500ms);

  ctx.deadline = now + 1h;
  CHECK(f.mediator.send(Add{}, ctx).value() == 3);
  CHECK(seen == now + 2s);
}

TEST_CASE("TimeoutBehavior: a failed call that ended past the deadline reports timeout") {
  TimeoutFixture f(100ms);
  f.mediator.handle<Add>([&](const Add&) -> catga::Result<int> {
    f.time().advance(150ms);  // slow
    return catga::make_error("db", "connection reset", false);
  });
  auto r = f.mediator.send(Add{});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == catga::errc::timeout);
  CHECK(r.error().retryable);
  CHECK(r.error().message.find("db: connection reset") != std::string::npos);
}

TEST_CASE("TimeoutBehavior: a failed call within the deadline keeps its own error") {
  TimeoutFixture f(100ms);
  f.mediator.handle<Add>([&](const Add&) -> catga::Result<int> {
    f.time().advance(50ms);
    return catga::make_error("db", "connection reset", false);
  });
  auto r = f.mediator.send(Add{});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error() == catga::Error{"db", "connection reset", false});
}

TEST_CASE("TimeoutBehavior: a successful late call keeps its result (the work is done)") {
  TimeoutFixture f(100ms);
  f.mediator.handle<Add>([&](const Add& a) {
    f.time().advance(1s);
    return a.x + a.y;
  });
  CHECK(f.mediator.send(Add{20, 22}).value() == 42);
}

TEST_CASE("TimeoutBehavior: handlers can check the remaining time cooperatively") {
  TimeoutFixture f(3s);
  catga::Context::Clock::duration remaining{};
  f.mediator.handle<Add>([&](const Add&, catga::Context& ctx) {
    remaining = ctx.remaining(f.time().now());
    return 0;
  });
  (void)f.mediator.send(Add{}).value();
  CHECK(remaining == 3s);
}

TEST_CASE("TimeoutBehavior: with no deadline and no default it does not read the clock") {
  TimeoutFixture f;
  f.mediator.handle<Add>([&](const Add&) { return ++f.calls; });
  CHECK(f.mediator.send(Add{}).value() == 1);
  CHECK(f.clock->reads.load() == 0);
}
