// The examples quoted in docs/concepts.md, one snippet per section. CTest runs
// this program: every `check` must hold, so the documentation cannot drift
// from what the code does.

#include <catga/mediator.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
  if (!ok) ++failures;
}

}  // namespace

// [snippet:concepts-messages]
namespace bank {

// A command with a result: send() returns Result<std::string>.
struct OpenAccount {
  std::string owner;
  long initial_cents = 0;
};
CATGA_COMMAND(OpenAccount, std::string, owner, initial_cents)

// A command without a result: send() returns Status (= Result<void>).
struct CloseAccount {
  std::string account_id;
};
CATGA_COMMAND(CloseAccount, void, account_id)

// A query: exactly one handler, no side effects expected.
struct Balance {
  std::string account_id;
  long cents = 0;
};
CATGA_STRUCT(Balance, account_id, cents)  // a plain value type: codec + field list

struct GetBalance {
  std::string account_id;
};
CATGA_QUERY(GetBalance, Balance, account_id)

// An event: any number of handlers, and the transport.
struct AccountOpened {
  std::string account_id;
  std::string owner;
};
CATGA_EVENT(AccountOpened, account_id, owner)
CATGA_QOS(AccountOpened, catga::QoS::exactly_once)

// A hand-written codec and a wire name of our choosing.
struct Heartbeat {};
CATGA_MESSAGE(Heartbeat, catga::EventTag, "bank.Heartbeat")
inline void to_json(nlohmann::json& j, const Heartbeat&) { j = nlohmann::json::object(); }
inline void from_json(const nlohmann::json&, Heartbeat&) {}

}  // namespace bank
// [/snippet:concepts-messages]

void messages() {
  std::printf("\n-- messages\n");
  check(catga::message_name<bank::OpenAccount>() == "OpenAccount", "the wire name is the declared name");
  check(catga::message_name<bank::Heartbeat>() == "bank.Heartbeat", "CATGA_MESSAGE sets any wire name");
  check(catga::message_qos<bank::AccountOpened>() == catga::QoS::exactly_once, "CATGA_QOS declares the QoS");
  check(catga::message_qos<bank::OpenAccount>() == catga::QoS::at_least_once, "the default QoS is at_least_once");
  const nlohmann::json j = bank::OpenAccount{"ann", 500};
  check(j.dump() == R"({"initial_cents":500,"owner":"ann"})", "the body is the message as JSON");
  static_assert(catga::Command<bank::OpenAccount> && catga::Query<bank::GetBalance> &&
                catga::Event<bank::AccountOpened>);
}

void handlers() {
  std::printf("\n-- handlers\n");
  catga::Mediator mediator;
  // [snippet:concepts-handlers]
  // The value itself...
  mediator.handle<bank::GetBalance>([](const bank::GetBalance& q) { return bank::Balance{q.account_id, 500}; });
  // ...or a Result, to fail without throwing; the Context is optional.
  mediator.handle<bank::OpenAccount>([](const bank::OpenAccount& c, catga::Context& ctx) -> catga::Result<std::string> {
    if (c.initial_cents < 0) return catga::make_error("negative_deposit", "initial deposit below zero");
    return "acc-" + ctx.message_id.text().str().substr(0, 8);
  });
  // Void results: return nothing, or a Status.
  mediator.handle<bank::CloseAccount>([](const bank::CloseAccount& c) -> catga::Status {
    if (c.account_id.empty()) return catga::make_error("unknown_account", "no account id");
    return {};
  });
  // Events: any number of handlers, each with a name (default "handler-<n>").
  mediator.on<bank::AccountOpened>([](const bank::AccountOpened&) { /* send a welcome mail */ }, "mail");
  mediator.on<bank::AccountOpened>([](const bank::AccountOpened&) { /* update the search index */ }, "search");
  // [/snippet:concepts-handlers]
  check(mediator.query(bank::GetBalance{"acc-1"}).value().cents == 500, "a query handler returns its value");
  check(mediator.send(bank::OpenAccount{"ann", 100}).ok(), "a command handler returns a Result");
  check(mediator.send(bank::OpenAccount{"ann", -1}).error().code == "negative_deposit", "or an Error");
  check(mediator.send(bank::CloseAccount{"acc-1"}).ok(), "a void command returns Status");
  check(mediator.publish(bank::AccountOpened{"acc-1", "ann"}).ok(), "both event handlers ran");
}

// [snippet:concepts-behavior]
// Counts calls and failures. A behavior sees the message through an
// Invocation (inv.info, inv.message_as<M>(), inv.context) and continues the
// chain by calling next().
class CountingBehavior final : public catga::Behavior {
 public:
  catga::Status handle(catga::Invocation& /*inv*/, catga::Next next) override {
    calls.fetch_add(1, std::memory_order_relaxed);
    catga::Status s = next();
    if (!s) failed.fetch_add(1, std::memory_order_relaxed);
    return s;
  }
  std::atomic<int> calls{0};
  std::atomic<int> failed{0};
};
// [/snippet:concepts-behavior]

void behaviors() {
  std::printf("\n-- behaviors\n");
  catga::Mediator mediator;
  std::vector<std::string> order;
  // [snippet:concepts-behaviors]
  auto counting = std::make_shared<CountingBehavior>();
  mediator.use(counting);  // global: every message type
  mediator.use(catga::make_behavior([&](catga::Invocation& inv, catga::Next next) {
    order.push_back("global " + std::string(inv.info.name));
    return next();
  }));
  // Per type, after the global ones. This one short-circuits: the handler
  // does not run for large deposits.
  mediator.use<bank::OpenAccount>(catga::make_behavior<bank::OpenAccount>(
      [&](const bank::OpenAccount& c, catga::Context&, catga::Next next) -> catga::Status {
        order.push_back("limit check");
        if (c.initial_cents > 1'000'000) return catga::make_error(catga::errc::validation, "deposit too large");
        return next();
      }));
  mediator.handle<bank::OpenAccount>([&](const bank::OpenAccount& c) {
    order.push_back("handler");
    return "acc-" + c.owner;
  });
  // [/snippet:concepts-behaviors]
  auto ok = mediator.send(bank::OpenAccount{"bob", 10});
  check(ok.ok() && *ok == "acc-bob", "the handler runs at the end of the chain");
  check((order == std::vector<std::string>{"global OpenAccount", "limit check", "handler"}),
        "global behaviors first, then per type, in registration order");
  order.clear();
  auto big = mediator.send(bank::OpenAccount{"bob", 5'000'000});
  check(!big && big.error().code == catga::errc::validation, "a behavior may short-circuit with an error");
  check((order == std::vector<std::string>{"global OpenAccount", "limit check"}), "the handler did not run");
  check(counting->calls == 2 && counting->failed == 1, "the class behavior saw both calls");
}

void context() {
  std::printf("\n-- context\n");
  catga::Mediator mediator;
  catga::Context seen_outer;
  catga::Context seen_inner;
  mediator.on<bank::AccountOpened>([&](const bank::AccountOpened&, catga::Context& ctx) { seen_inner = ctx; });
  mediator.handle<bank::OpenAccount>(
      [&](const bank::OpenAccount& c, catga::Context& ctx) -> catga::Result<std::string> {
        seen_outer = ctx;
        // Dispatched from inside a handler: the event is a child of this command.
        if (auto s = mediator.publish(bank::AccountOpened{"acc-1", c.owner}); !s) return s.error();
        return std::string("acc-1");
      });
  // [snippet:concepts-context]
  catga::Context ctx = catga::Context::root();  // new message id = correlation id, new trace
  ctx.deadline = catga::Context::Clock::now() + std::chrono::seconds(2);
  ctx.headers.set("Tenant", "acme");
  auto opened = mediator.send(bank::OpenAccount{"ann", 100}, ctx);
  // Inside the OpenAccount handler, mediator.publish(AccountOpened{...}) gave the
  // event a context with:
  //   message_id     fresh
  //   correlation_id ctx.correlation_id   (the whole conversation)
  //   causation_id   ctx.message_id       (the message that caused it)
  //   trace          same trace id, parent span = the command's span
  //   deadline       ctx.deadline
  // [/snippet:concepts-context]
  check(opened.ok(), "the command succeeded");
  check(seen_outer.message_id == ctx.message_id && seen_outer.headers.get("Tenant") == "acme",
        "the handler got the context we passed");
  check(seen_inner.message_id != ctx.message_id, "the child has its own message id");
  check(seen_inner.correlation_id == ctx.correlation_id, "the child keeps the correlation id");
  check(seen_inner.causation_id == ctx.message_id, "the child's causation is the command");
  check(seen_inner.trace.trace_lo == ctx.trace.trace_lo && seen_inner.trace.parent_span_id == ctx.trace.span_id,
        "the child continues the trace");
  check(seen_inner.deadline == ctx.deadline, "the child inherits the deadline");
  check(seen_inner.headers.empty(), "headers are not copied to children");
}

void results() {
  std::printf("\n-- results and errors\n");
  catga::Mediator mediator;
  mediator.handle<bank::GetBalance>([](const bank::GetBalance& q) -> bank::Balance {
    if (q.account_id == "flaky") throw std::runtime_error("database connection reset");
    throw catga::Exception({"unknown_account", "no account " + q.account_id, false});
  });
  // [snippet:concepts-results]
  catga::Result<bank::Balance> r = mediator.query(bank::GetBalance{"acc-404"});
  if (!r) {
    const catga::Error& e = r.error();  // code, message, retryable
    std::printf("failed: %s (%s)%s\n", e.code.c_str(), e.message.c_str(), e.retryable ? ", retryable" : "");
  }
  // r.value() would throw catga::Exception holding the same Error.

  auto missing = catga::Mediator{}.send(bank::CloseAccount{"acc-1"});
  // missing.error().code == catga::errc::no_handler, the message names "CloseAccount".
  // [/snippet:concepts-results]
  check(!r && r.error().code == "unknown_account" && !r.error().retryable, "catga::Exception keeps its Error");
  auto flaky = mediator.query(bank::GetBalance{"flaky"});
  check(!flaky && flaky.error().code == catga::errc::exception && flaky.error().retryable,
        "a std::exception becomes code 'exception', retryable");
  check(!missing && missing.error().code == catga::errc::no_handler &&
            missing.error().message.find("CloseAccount") != std::string::npos,
        "a missing handler is an Error naming the type");
  bool threw = false;
  try {
    (void)r.value();
  } catch (const catga::Exception& e) {
    threw = e.error().code == "unknown_account";
  }
  check(threw, "value() on an error throws catga::Exception");
}

void threading() {
  std::printf("\n-- threading\n");
  // [snippet:concepts-threading]
  catga::Mediator mediator;
  std::atomic<long> total{0};
  // 1. Register everything on one thread...
  mediator.handle<bank::OpenAccount>([&](const bank::OpenAccount& c) {
    total.fetch_add(c.initial_cents, std::memory_order_relaxed);
    return c.owner;
  });
  // 2. ...then dispatch from as many threads as you like.
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&mediator] {
      for (int i = 0; i < 1000; ++i) (void)mediator.send(bank::OpenAccount{"w", 1});
    });
  }
  for (auto& w : workers) w.join();
  // Registering while other threads dispatch is a data race: don't.
  // [/snippet:concepts-threading]
  check(total == 4000, "4 threads x 1000 sends, every one handled");
}

int main() {
  messages();
  handlers();
  behaviors();
  context();
  results();
  threading();
  std::printf("\n%s\n", failures == 0 ? "concepts: all as documented" : "concepts: MISMATCH");
  return failures == 0 ? 0 : 1;
}
