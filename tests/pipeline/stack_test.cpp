#include <doctest/doctest.h>

#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>
#include <sstream>

#include "catga/pipeline.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using pt::PlaceOrder;

// The order docs/pipeline.md recommends:
// logging → metrics → timeout → retry → idempotency → validation → handler.
TEST_CASE("Full stack: retry re-runs through idempotency, duplicates replay, metrics see one call per send") {
  auto clock = std::make_shared<catga::ManualClock>();
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  sink->set_pattern("%v");
  auto logger = std::make_shared<spdlog::logger>("stack", sink);
  logger->set_level(spdlog::level::debug);
  auto metrics = std::make_shared<catga::Metrics>();
  auto store = std::make_shared<catga::InMemoryIdempotencyStore>(
      catga::InMemoryIdempotencyStoreOptions{.max_entries = 100, .clock = clock});
  auto validation = std::make_shared<catga::ValidationBehavior>();
  validation->add<PlaceOrder>([](const PlaceOrder& c, catga::ValidationErrors& e) {
    if (c.amount <= 0) e.add("amount", "must be positive");
  });

  catga::Mediator m;
  m.use(std::make_shared<catga::LoggingBehavior>(catga::LoggingOptions{.logger = logger, .clock = clock}));
  m.use(std::make_shared<catga::MetricsBehavior>(metrics, clock));
  m.use(std::make_shared<catga::TimeoutBehavior>(catga::TimeoutOptions{.default_timeout = 10s, .clock = clock}));
  m.use(std::make_shared<catga::RetryBehavior>(
      catga::RetryOptions{.max_attempts = 3, .initial_delay = 100ms, .clock = clock, .seed = 1}));
  m.use(std::make_shared<catga::IdempotencyBehavior>(catga::IdempotencyOptions{.store = store, .clock = clock}));
  m.use(validation);

  int calls = 0;
  std::vector<int> attempts;
  m.handle<PlaceOrder>([&](const PlaceOrder& c, catga::Context& ctx) -> catga::Result<std::string> {
    ++calls;
    attempts.push_back(ctx.attempt);
    if (calls == 1) return pt::busy();  // first try fails transiently
    return "order-" + c.customer;
  });

  auto ctx = catga::Context::root();
  auto first = m.send(PlaceOrder{"ann", 10}, ctx);
  REQUIRE(first.ok());
  CHECK(*first == "order-ann");
  CHECK(attempts == std::vector<int>{1, 2});  // the failed claim was released, the retry re-claimed

  auto dup = m.send(PlaceOrder{"ann", 10}, ctx);
  REQUIRE(dup.ok());
  CHECK(*dup == "order-ann");
  CHECK(calls == 2);

  auto invalid = m.send(PlaceOrder{"bob", 0});
  REQUIRE_FALSE(invalid.ok());
  CHECK(invalid.error().code == catga::errc::validation);
  CHECK(calls == 2);

  CHECK(metrics->handled("PlaceOrder") == 3);
  CHECK(metrics->failed("PlaceOrder", "validation") == 1);
  CHECK(clock->sleeps().size() == 1);
  const std::string text = log.str();
  CHECK(text.find("command PlaceOrder id=" + ctx.message_id.text().str()) != std::string::npos);
  CHECK(text.find("failed code=validation") != std::string::npos);
}
