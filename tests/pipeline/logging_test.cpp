#include <doctest/doctest.h>

#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <memory>
#include <sstream>

#include "catga/pipeline/logging.hpp"
#include "test_support.hpp"

using pt::PlaceOrder;

namespace {

struct LogFixture {
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> logger;
  std::shared_ptr<pt::CountingClock> clock = std::make_shared<pt::CountingClock>();
  catga::Mediator mediator;
  int calls = 0;

  LogFixture() {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
    sink->set_pattern("%l %v");
    logger = std::make_shared<spdlog::logger>("catga-test", sink);
    logger->set_level(spdlog::level::trace);
    mediator.handle<PlaceOrder>([this](const PlaceOrder& c) -> catga::Result<std::string> {
      ++calls;
      clock->inner.advance(std::chrono::microseconds(1500));
      if (c.amount <= 0) return catga::make_error("validation", "amount: must be positive");
      return "order-" + c.customer;
    });
  }
};

}  // namespace

TEST_CASE("LoggingBehavior: a success line carries type, ids, attempt, outcome and duration") {
  LogFixture f;
  f.mediator.use(std::make_shared<catga::LoggingBehavior>(
      catga::LoggingOptions{.logger = f.logger, .success_level = spdlog::level::info, .clock = f.clock}));
  auto ctx = catga::Context::root();
  const std::string id = ctx.message_id.text().str();
  const std::string correlation = ctx.correlation_id.text().str();
  auto r = f.mediator.send(PlaceOrder{"ann", 10}, ctx);
  REQUIRE(r.ok());
  CHECK(*r == "order-ann");
  const std::string line = f.out.str();
  CHECK(line ==
        "info command PlaceOrder id=" + id + " correlation=" + correlation + " attempt=1 ok duration_us=1500\n");
}

TEST_CASE("LoggingBehavior: a failure line carries the error code and message at the failure level") {
  LogFixture f;
  f.mediator.use(std::make_shared<catga::LoggingBehavior>(
      catga::LoggingOptions{.logger = f.logger, .failure_level = spdlog::level::err, .clock = f.clock}));
  auto ctx = catga::Context::root();
  auto r = f.mediator.send(PlaceOrder{"bob", -1}, ctx);
  REQUIRE_FALSE(r.ok());
  const std::string line = f.out.str();
  CHECK(line.rfind("error command PlaceOrder id=" + ctx.message_id.text().str(), 0) == 0);
  CHECK(line.find(" failed code=validation message=\"amount: must be positive\" retryable=false duration_us=1500\n") !=
        std::string::npos);
}

TEST_CASE("LoggingBehavior: event handler lines name the handler") {
  LogFixture f;
  f.mediator.use(std::make_shared<catga::LoggingBehavior>(catga::LoggingOptions{.logger = f.logger, .clock = f.clock}));
  f.mediator.on<pt::OrderPlaced>([](const pt::OrderPlaced&) {}, "mailer");
  CHECK(f.mediator.publish(pt::OrderPlaced{"o-1"}).ok());
  CHECK(f.out.str().rfind("debug event OrderPlaced id=", 0) == 0);
  CHECK(f.out.str().find(" handler=mailer attempt=1 ok") != std::string::npos);
}

TEST_CASE("LoggingBehavior: level off writes nothing and reads no clock") {
  LogFixture f;
  f.logger->set_level(spdlog::level::off);
  f.mediator.use(std::make_shared<catga::LoggingBehavior>(catga::LoggingOptions{.logger = f.logger, .clock = f.clock}));
  CHECK(f.mediator.send(PlaceOrder{"ann", 10}).value() == "order-ann");
  CHECK_FALSE(f.mediator.send(PlaceOrder{"ann", 0}).ok());
  CHECK(f.calls == 2);
  CHECK(f.out.str().empty());
  CHECK(f.clock->reads.load() == 0);
}

TEST_CASE("LoggingBehavior: success below the logger level is skipped, failures still logged") {
  LogFixture f;
  f.logger->set_level(spdlog::level::warn);
  f.mediator.use(std::make_shared<catga::LoggingBehavior>(catga::LoggingOptions{.logger = f.logger,
                                                                                .success_level = spdlog::level::info,
                                                                                .failure_level = spdlog::level::warn,
                                                                                .clock = f.clock}));
  CHECK(f.mediator.send(PlaceOrder{"ann", 10}).ok());
  CHECK(f.out.str().empty());
  CHECK_FALSE(f.mediator.send(PlaceOrder{"ann", 0}).ok());
  CHECK(f.out.str().rfind("warning command PlaceOrder", 0) == 0);
}

TEST_CASE("LoggingBehavior: without a logger it uses spdlog's default logger") {
  LogFixture f;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(f.logger);
  f.mediator.use(std::make_shared<catga::LoggingBehavior>(
      catga::LoggingOptions{.success_level = spdlog::level::info, .clock = f.clock}));
  CHECK(f.mediator.send(PlaceOrder{"cy", 3}).ok());
  spdlog::set_default_logger(previous);
  CHECK(f.out.str().rfind("info command PlaceOrder", 0) == 0);
}
