// Quickstart: a command, a query and an event through a pipeline of standard
// behaviors (logging, retry, idempotency, validation) and the in-memory
// transport. `bash scripts/demo` builds and runs it; CTest runs it too, and it
// exits non-zero if anything behaves differently from what it prints.
//
// The part between the snippet markers is quoted in README.md (a test checks
// the copy is exact).

#include <catga/mediator.hpp>
#include <catga/pipeline.hpp>
#include <catga/transport/in_memory.hpp>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>

namespace {

// One line per call, written with a single stdio call so lines printed by
// transport threads never interleave with ours.
template <class... Args>
void say(const char* format, Args... args) {
  char line[512];
  if constexpr (sizeof...(Args) == 0) {
    std::snprintf(line, sizeof line, "%s\n", format);
  } else {
    std::string f = std::string(format) + "\n";
    std::snprintf(line, sizeof line, f.c_str(), args...);
  }
  std::fputs(line, stdout);
  std::fflush(stdout);
}

int failures = 0;

void expect(bool ok, const char* what) {
  if (!ok) {
    say("UNEXPECTED: %s", what);
    ++failures;
  }
}

}  // namespace

// [snippet:quickstart]
namespace shop {

// A command answered with the new order's id.
struct PlaceOrder {
  std::string sku;
  int quantity = 0;
};
CATGA_COMMAND(PlaceOrder, std::string, sku, quantity)

// A query and its answer.
struct OrderView {
  std::string order_id;
  std::string sku;
  int quantity = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(OrderView, order_id, sku, quantity)

struct GetOrder {
  std::string order_id;
};
CATGA_QUERY(GetOrder, OrderView, order_id)

// An event: every local handler and every consumer group gets it.
struct OrderPlaced {
  std::string order_id;
  std::string sku;
  int quantity = 0;
};
CATGA_EVENT(OrderPlaced, order_id, sku, quantity)

}  // namespace shop

// The standard pipeline, outermost first.
void use_standard_pipeline(catga::Mediator& mediator) {
  mediator.use(std::make_shared<catga::LoggingBehavior>());
  mediator.use(std::make_shared<catga::RetryBehavior>(catga::RetryOptions{.max_attempts = 3}));
  mediator.use(std::make_shared<catga::IdempotencyBehavior>(
      catga::IdempotencyOptions{.store = std::make_shared<catga::InMemoryIdempotencyStore>()}));
  auto validation = std::make_shared<catga::ValidationBehavior>();
  validation->add<shop::PlaceOrder>([](const shop::PlaceOrder& c, catga::ValidationErrors& e) {
    if (c.sku.empty()) e.add("sku", "required");
    if (c.quantity <= 0) e.add("quantity", "must be positive");
  });
  mediator.use(validation);
}
// [/snippet:quickstart]

int main() {
  // Pipeline log lines (LoggingBehavior) go to stdout, indented.
  auto logger = spdlog::stdout_logger_mt("catga");
  logger->set_pattern("    log: %v");
  logger->set_level(spdlog::level::debug);
  spdlog::set_default_logger(logger);

  // [snippet:quickstart-wiring]
  catga::InMemoryTransport transport;  // in-process stand-in for NATS JetStream
  catga::Mediator mediator;
  mediator.attach(transport);  // published events also go to the transport
  use_standard_pipeline(mediator);

  // Register every handler before dispatching starts.
  std::map<std::string, shop::OrderView> orders;
  mediator.handle<shop::GetOrder>([&](const shop::GetOrder& q) -> catga::Result<shop::OrderView> {
    auto it = orders.find(q.order_id);
    if (it == orders.end()) return catga::make_error("not_found", "no order " + q.order_id);
    return it->second;
  });
  // A local event handler runs inside publish(), on the publishing thread.
  mediator.on<shop::OrderPlaced>(
      [](const shop::OrderPlaced& e) {
        std::printf("  local handler 'mail': confirmation for %s\n", e.order_id.c_str());
      },
      "mail");
  // [/snippet:quickstart-wiring]

  int place_calls = 0;
  bool warehouse_busy = true;  // the first call fails with a retryable error

  mediator.handle<shop::PlaceOrder>([&](const shop::PlaceOrder& c, catga::Context& ctx) -> catga::Result<std::string> {
    ++place_calls;
    if (warehouse_busy) {
      warehouse_busy = false;
      say("  handler: PlaceOrder attempt %d: warehouse busy (retryable)", ctx.attempt);
      return catga::make_error("warehouse_busy", "try again", /*retryable=*/true);
    }
    const std::string id = "order-" + std::to_string(orders.size() + 1);
    orders[id] = shop::OrderView{id, c.sku, c.quantity};
    say("  handler: PlaceOrder attempt %d: stored %s", ctx.attempt, id.c_str());
    // Published from inside the handler: the event is a child of this
    // command (same correlation id, causation = this message).
    if (auto s = mediator.publish(shop::OrderPlaced{id, c.sku, c.quantity}); !s) return s.error();
    return id;
  });

  // A consumer group receives the event through the transport, on one of the
  // transport's threads.
  std::atomic<int> billed{0};
  std::string billing_correlation;
  catga::SubscribeOptions billing_group;
  billing_group.group = "billing";
  auto billing =
      mediator.subscribe<shop::OrderPlaced>(billing_group, [&](const shop::OrderPlaced& e, catga::Context& ctx) {
        billing_correlation = ctx.correlation_id.text().str();
        say("  consumer group 'billing': invoice for %s (%d x %s)", e.order_id.c_str(), e.quantity, e.sku.c_str());
        ++billed;
      });
  if (!billing) {
    say("subscribe failed: %s", billing.error().message.c_str());
    return 1;
  }

  // --- 1. a command --------------------------------------------------------------
  say("\n1. send PlaceOrder{A-1, 2}: the first attempt fails, RetryBehavior tries again");
  auto ctx = catga::Context::root();
  const std::string correlation = ctx.correlation_id.text().str();
  auto placed = mediator.send(shop::PlaceOrder{"A-1", 2}, ctx);
  if (placed) {
    say("=> order id %s", placed->c_str());
  } else {
    say("=> failed: %s", placed.error().message.c_str());
  }
  expect(placed.ok() && *placed == "order-1", "PlaceOrder returns order-1");
  expect(place_calls == 2, "the handler ran twice (one retry)");

  // --- 2. the same message again: idempotency -------------------------------------
  say("\n2. send the same PlaceOrder again (same message id): IdempotencyBehavior replays the result");
  auto again = mediator.send(shop::PlaceOrder{"A-1", 2}, ctx);
  say("=> order id %s, handler calls so far: %d", again ? again->c_str() : "(error)", place_calls);
  expect(again.ok() && *again == "order-1", "the duplicate gets the stored result");
  expect(place_calls == 2, "the duplicate did not run the handler");

  // --- 3. a query ------------------------------------------------------------------
  say("\n3. query GetOrder{order-1}");
  auto view = mediator.query(shop::GetOrder{"order-1"});
  if (view) say("=> %s: %d x %s", view->order_id.c_str(), view->quantity, view->sku.c_str());
  expect(view.ok() && view->sku == "A-1" && view->quantity == 2, "GetOrder finds the order");

  // --- 4. validation ---------------------------------------------------------------
  say("\n4. send PlaceOrder{\"\", 0}: ValidationBehavior rejects it before the handler");
  auto invalid = mediator.send(shop::PlaceOrder{"", 0});
  if (!invalid) say("=> error %s: %s", invalid.error().code.c_str(), invalid.error().message.c_str());
  expect(!invalid && invalid.error().code == catga::errc::validation, "an invalid order is rejected");
  expect(place_calls == 2, "the handler did not see the invalid order");

  // --- 5. no handler ---------------------------------------------------------------
  say("\n5. query with no handler registered: an Error, not a crash");
  catga::Mediator empty;
  auto none = empty.query(shop::GetOrder{"order-1"});
  if (!none) say("=> error %s: %s", none.error().code.c_str(), none.error().message.c_str());
  expect(!none && none.error().code == catga::errc::no_handler, "a missing handler is reported");

  // --- the event reached the consumer group -------------------------------------------
  say("\n6. wait for the transport to deliver OrderPlaced to 'billing'");
  const bool idle = transport.wait_idle(std::chrono::seconds(30));
  say("=> billed %d order(s); billing saw correlation id %s (the command's: %s)", billed.load(),
      billing_correlation.c_str(), correlation.c_str());
  expect(idle && billed == 1, "billing received the event once");
  expect(billing_correlation == correlation, "the event carries the command's correlation id");

  billing->stop();  // stop consuming before the transport goes away
  if (failures == 0) {
    say("\nquickstart: all as expected");
  } else {
    say("\nquickstart: %d unexpected result(s)", failures);
  }
  return failures == 0 ? 0 : 1;
}
