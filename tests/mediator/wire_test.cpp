// wire::write_headers / read_context, reply bodies, subjects.

#include <doctest/doctest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <catga/wire.hpp>

using namespace std::chrono_literals;

namespace {

// Headers as they would arrive: ordered, possibly repeated names kept last.
struct HeaderMap {
  std::vector<std::pair<std::string, std::string>> entries;

  std::optional<std::string_view> get(std::string_view name) const {
    for (const auto& [k, v] : entries) {
      if (k == name) return std::string_view(v);
    }
    return std::nullopt;
  }
  void set(std::string_view name, std::string_view value) {
    for (auto& [k, v] : entries) {
      if (k == name) {
        v = value;
        return;
      }
    }
    entries.emplace_back(name, value);
  }
  void erase(std::string_view name) {
    std::erase_if(entries, [&](const auto& e) { return e.first == name; });
  }
};

HeaderMap written(const catga::Context& ctx, std::string_view type) {
  HeaderMap h;
  catga::wire::write_headers(ctx, type, [&](std::string_view k, std::string_view v) { h.entries.emplace_back(k, v); });
  return h;
}

catga::Result<catga::Context> read(const HeaderMap& h) {
  return catga::wire::read_context([&](catga::wire::HeaderVisitor visit) {
    for (const auto& [k, v] : h.entries) visit(k, v);
  });
}

}  // namespace

TEST_CASE("write_headers writes the managed headers, then the user headers") {
  auto parent = catga::Context::root();
  auto ctx = parent.child();
  ctx.headers.set("Tenant", "acme");
  ctx.headers.set("Nats-Msg-Id", "spoofed");  // managed names in user headers are not written twice
  const auto h = written(ctx, "OrderPlaced");

  CHECK(h.get("Nats-Msg-Id") == std::optional<std::string_view>(ctx.message_id.text().view()));
  CHECK(h.get("Catga-Type") == std::optional<std::string_view>("OrderPlaced"));
  CHECK(h.get("Catga-Correlation-Id") == std::optional<std::string_view>(parent.message_id.text().view()));
  CHECK(h.get("Catga-Causation-Id") == std::optional<std::string_view>(parent.message_id.text().view()));
  CHECK(h.get("traceparent") == std::optional<std::string_view>(ctx.trace.traceparent().view()));
  CHECK(h.get("Content-Type") == std::optional<std::string_view>("application/json"));
  CHECK(h.get("Tenant") == std::optional<std::string_view>("acme"));
  CHECK_FALSE(h.get("Catga-Timeout-Ms"));  // no deadline
  std::size_t msg_ids = 0;
  for (const auto& [k, v] : h.entries) msg_ids += k == "Nats-Msg-Id" ? 1 : 0;
  CHECK(msg_ids == 1);
  CHECK(h.entries.back().first == "Tenant");
}

TEST_CASE("Nats-Msg-Id: 1-64 visible ASCII characters, as docs/wire-format.md says") {
  auto with_id = [](std::string id) {
    HeaderMap h;
    h.entries = {{"Nats-Msg-Id", std::move(id)}, {"Catga-Type", "X"}};
    return read(h);
  };
  CHECK(with_id("order-1.placed"));
  CHECK(with_id(std::string(64, '~')));
  CHECK(with_id("!"));
  for (std::string bad : {std::string(), std::string("a b"), std::string(65, 'a'), std::string("a\tb"),
                          std::string("caf\xc3\xa9")}) {
    CAPTURE(bad);
    auto r = with_id(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == catga::errc::malformed);
  }
  CHECK(with_id("a b").error().message.find("no space") != std::string::npos);
}

TEST_CASE("a root message has no causation header") {
  const auto h = written(catga::Context::root(), "X");
  CHECK_FALSE(h.get("Catga-Causation-Id"));
  CHECK(h.get("Catga-Correlation-Id") == h.get("Nats-Msg-Id"));
}

TEST_CASE("headers round trip through read_context") {
  auto parent = catga::Context::root();
  auto ctx = parent.child();
  ctx.deadline = catga::Context::Clock::now() + 60s;
  ctx.headers.set("Tenant", "acme");
  ctx.headers.set("Idempotency-Key", "k-1");

  auto back = read(written(ctx, "OrderPlaced"));
  REQUIRE(back);
  CHECK(back->message_id == ctx.message_id);
  CHECK(back->correlation_id == ctx.correlation_id);
  CHECK(back->causation_id == ctx.causation_id);
  // The receiver continues the trace: same trace id, the sender's span is the parent.
  CHECK(back->trace.trace_hi == ctx.trace.trace_hi);
  CHECK(back->trace.trace_lo == ctx.trace.trace_lo);
  CHECK(back->trace.parent_span_id == ctx.trace.span_id);
  CHECK(back->trace.flags == ctx.trace.flags);
  CHECK(back->headers.size() == 2);
  CHECK(back->headers.get("Tenant") == std::optional<std::string_view>("acme"));
  CHECK(back->headers.get("Idempotency-Key") == std::optional<std::string_view>("k-1"));
  CHECK_FALSE(back->headers.get("Nats-Msg-Id"));  // managed headers are Context fields
  // The deadline travels as time left, so it stays within what was sent.
  REQUIRE(back->has_deadline());
  CHECK(back->remaining() > 0s);
  CHECK(back->remaining() <= 60s);
  CHECK(back->attempt == 1);
}

TEST_CASE("read_context: one pass; a managed header's first value counts, the rest are the handler's") {
  HeaderMap h;
  h.entries = {{"Tenant", "acme"},
               {"Nats-Msg-Id", "first"},
               {"Catga-Type", "OrderPlaced"},
               {"Nats-Msg-Id", "second"},
               {"Content-Type", "application/json"},
               {"Catga-Type", "Other"},
               {"Catga-Timeout-Ms", "5000"},
               {"Catga-Timeout-Ms", "not a number"},
               {"Tenant", "globex"},
               {"tracestate", "k=v"}};
  std::optional<std::string_view> type;
  auto ctx = catga::wire::read_context(
      [&](catga::wire::HeaderVisitor visit) {
        for (const auto& [k, v] : h.entries) visit(k, v);
      },
      &type);
  REQUIRE(ctx);
  CHECK(type == std::optional<std::string_view>("OrderPlaced"));
  CHECK(ctx->message_id.text().view() == "first");
  CHECK(ctx->has_deadline());
  // Only unmanaged names reach Context::headers (set: the last value stays).
  CHECK(ctx->headers.size() == 2);
  CHECK(ctx->headers.get("Tenant") == std::optional<std::string_view>("globex"));
  CHECK(ctx->headers.get("tracestate") == std::optional<std::string_view>("k=v"));
  CHECK_FALSE(ctx->headers.get("Content-Type"));

  // The type is reported even when the rest cannot be read.
  HeaderMap broken;
  broken.entries = {{"Catga-Type", "Other"}};
  type.reset();
  auto failed = catga::wire::read_context(
      [&](catga::wire::HeaderVisitor visit) {
        for (const auto& [k, v] : broken.entries) visit(k, v);
      },
      &type);
  REQUIRE_FALSE(failed);
  CHECK(failed.error().message == "missing header Nats-Msg-Id");
  CHECK(type == std::optional<std::string_view>("Other"));
}

TEST_CASE("foreign ids survive the round trip byte for byte") {
  HeaderMap h;
  h.set("Nats-Msg-Id", "evt-2024-0001");
  h.set("Catga-Type", "OrderPlaced");
  h.set("Catga-Correlation-Id", "saga:42");
  auto ctx = read(h);
  REQUIRE(ctx);
  CHECK(ctx->message_id.text().view() == "evt-2024-0001");
  CHECK(ctx->correlation_id.text().view() == "saga:42");
  CHECK(ctx->causation_id.is_nil());
  CHECK(ctx->trace.valid());  // no traceparent: a new trace starts
  CHECK_FALSE(ctx->has_deadline());
  const auto again = written(*ctx, "OrderPlaced");
  CHECK(again.get("Nats-Msg-Id") == std::optional<std::string_view>("evt-2024-0001"));
  CHECK(again.get("Catga-Correlation-Id") == std::optional<std::string_view>("saga:42"));
}

TEST_CASE("read_context: a missing correlation id defaults to the message id") {
  HeaderMap h;
  h.set("Nats-Msg-Id", "m-1");
  h.set("Catga-Type", "T");
  auto ctx = read(h);
  REQUIRE(ctx);
  CHECK(ctx->correlation_id == ctx->message_id);
}

TEST_CASE("read_context: a replayed copy keeps the original message id") {
  HeaderMap h;
  h.set("Nats-Msg-Id", "orig-7.r12");
  h.set("Catga-Type", "T");
  h.set("Catga-Original-Msg-Id", "orig-7");

  SUBCASE("without Catga-Replayed the Nats-Msg-Id is the id") {
    auto ctx = read(h);
    REQUIRE(ctx);
    CHECK(ctx->message_id.text().str() == "orig-7.r12");
  }
  SUBCASE("with Catga-Replayed the original id is the id (and the default correlation)") {
    h.set("Catga-Replayed", "12");
    auto ctx = read(h);
    REQUIRE(ctx);
    CHECK(ctx->message_id.text().str() == "orig-7");
    CHECK(ctx->correlation_id.text().str() == "orig-7");
    // The markers stay visible to handlers.
    CHECK(ctx->headers.get("Catga-Replayed") == std::optional<std::string_view>("12"));
    CHECK(ctx->headers.get("Catga-Original-Msg-Id") == std::optional<std::string_view>("orig-7"));
  }
  // Found by fuzz_message_decoding (corpus replayed_original_id_twice):
  // the id came from the first value, ctx.headers kept the last, so the
  // message re-encoded from the context was read with another id.
  SUBCASE("a repeated Catga-Original-Msg-Id: its last value, as in ctx.headers") {
    h.set("Catga-Replayed", "12");
    h.entries.emplace_back("Catga-Original-Msg-Id", "orig-8");
    auto ctx = read(h);
    REQUIRE(ctx);
    CHECK(ctx->message_id.text().str() == "orig-8");
    CHECK(ctx->headers.get("Catga-Original-Msg-Id") == std::optional<std::string_view>("orig-8"));
    auto again = read(written(*ctx, "T"));
    REQUIRE(again);
    CHECK(again->message_id == ctx->message_id);
  }
  SUBCASE("an invalid original id falls back to Nats-Msg-Id") {
    h.set("Catga-Replayed", "12");
    h.set("Catga-Original-Msg-Id", "");
    auto ctx = read(h);
    REQUIRE(ctx);
    CHECK(ctx->message_id.text().str() == "orig-7.r12");
  }
  SUBCASE("a replayed copy without an original id keeps Nats-Msg-Id") {
    h.set("Catga-Replayed", "12");
    h.erase("Catga-Original-Msg-Id");
    auto ctx = read(h);
    REQUIRE(ctx);
    CHECK(ctx->message_id.text().str() == "orig-7.r12");
  }
}

TEST_CASE("read_context: an invalid traceparent restarts the trace instead of failing") {
  HeaderMap h;
  h.set("Nats-Msg-Id", "m-1");
  h.set("Catga-Type", "T");
  h.set("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01");
  auto ctx = read(h);
  REQUIRE(ctx);
  CHECK(ctx->trace.valid());
  CHECK(ctx->trace.parent_span_id == 0);
}

TEST_CASE("read_context: malformed headers") {
  const auto good = written(catga::Context::root(), "OrderPlaced");
  struct Case {
    const char* what;
    std::string name;
    std::optional<std::string> value;  // nullopt: remove the header
    const char* message_part;
  };
  const std::vector<Case> cases = {
      {"no message id", "Nats-Msg-Id", std::nullopt, "Nats-Msg-Id"},
      {"empty message id", "Nats-Msg-Id", "", "Nats-Msg-Id"},
      {"message id with a space", "Nats-Msg-Id", "a b", "Nats-Msg-Id"},
      {"message id too long", "Nats-Msg-Id", std::string(65, 'x'), "Nats-Msg-Id"},
      {"no type", "Catga-Type", std::nullopt, "Catga-Type"},
      {"bad correlation id", "Catga-Correlation-Id", "", "Correlation"},
      {"bad causation id", "Catga-Causation-Id", "x y", "Causation"},
      {"timeout not a number", "Catga-Timeout-Ms", "soon", "Timeout"},
      {"negative timeout", "Catga-Timeout-Ms", "-5", "Timeout"},
      {"timeout with junk", "Catga-Timeout-Ms", "12ms", "Timeout"},
      {"empty timeout", "Catga-Timeout-Ms", "", "Timeout"},
      {"minus one timeout", "Catga-Timeout-Ms", "-1", "Timeout"},
      // Before: accepted, and now + 10^13 ms overflowed the clock's
      // nanoseconds (undefined behaviour, found by the fuzz target).
      {"timeout past the clock", "Catga-Timeout-Ms", "10000000000000", "Timeout"},
      {"timeout past long long", "Catga-Timeout-Ms", "99999999999999999999", "Timeout"},
      {"timeout over one day", "Catga-Timeout-Ms", "86400001", "Timeout"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    HeaderMap h = good;
    if (c.value) {
      h.set(c.name, *c.value);
    } else {
      h.erase(c.name);
    }
    auto r = read(h);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == catga::errc::malformed);
    CHECK_FALSE(r.error().retryable);
    CHECK(r.error().message.find(c.message_part) != std::string::npos);
  }
}

TEST_CASE("read_context: a timeout of one day is the largest accepted") {
  HeaderMap h = written(catga::Context::root(), "T");
  h.set("Catga-Timeout-Ms", std::to_string(catga::wire::kMaxTimeoutMs));
  auto ctx = read(h);
  REQUIRE(ctx);
  CHECK(ctx->remaining() > std::chrono::hours(23));
  CHECK(ctx->remaining() <= std::chrono::hours(24));
}

TEST_CASE("read_context: a zero timeout is an expired deadline, not an error") {
  HeaderMap h = written(catga::Context::root(), "T");
  h.set("Catga-Timeout-Ms", "0");
  auto ctx = read(h);
  REQUIRE(ctx);
  CHECK(ctx->has_deadline());
  CHECK(ctx->remaining() == catga::Context::Clock::duration::zero());
}

// Before: 20,000 user headers on one request were all copied into the
// handler's context (found by fault_hostile_input).
TEST_CASE("read_context: at most 64 user headers of at most 64 KiB in all; more is malformed") {
  auto with_user_headers = [](std::size_t n, std::size_t value_size) {
    HeaderMap h = written(catga::Context::root(), "T");
    for (std::size_t i = 0; i < n; ++i) h.entries.emplace_back("X-H" + std::to_string(i), std::string(value_size, 'v'));
    return h;
  };
  auto fine = read(with_user_headers(64, 10));
  REQUIRE(fine);
  CHECK(fine->headers.size() == 64);
  auto many = read(with_user_headers(65, 10));
  REQUIRE_FALSE(many);
  CHECK(many.error().code == "malformed");
  CHECK_FALSE(many.error().retryable);
  CHECK(many.error().message.find("too many user headers: 65 headers") != std::string::npos);
  CHECK_FALSE(read(with_user_headers(20'000, 1)));
  CHECK(read(with_user_headers(2, 30'000)));  // 60,000 bytes and names
  auto big = read(with_user_headers(3, 30'000));
  REQUIRE_FALSE(big);
  CHECK(big.error().code == "malformed");
  // Managed headers (ids, type, trace, timeout) do not count.
  HeaderMap annotated = with_user_headers(50, 10);
  annotated.set("Catga-Correlation-Id", "c-1");
  CHECK(read(annotated));
}

TEST_CASE("encode_reply produces the documented bodies") {
  const nlohmann::json value = {{"id", "o-1"}};
  CHECK(nlohmann::json::parse(catga::wire::encode_reply({}, &value)) ==
        nlohmann::json{{"ok", true}, {"value", {{"id", "o-1"}}}});
  CHECK(nlohmann::json::parse(catga::wire::encode_reply({}, nullptr)) == nlohmann::json{{"ok", true}});
  const catga::Status failed = catga::make_error("out_of_stock", "sku A-1", true);
  CHECK(nlohmann::json::parse(catga::wire::encode_reply(failed, nullptr)) ==
        nlohmann::json{{"ok", false},
                       {"error", {{"code", "out_of_stock"}, {"message", "sku A-1"}, {"retryable", true}}}});
}

TEST_CASE("decode_reply inverts encode_reply") {
  const nlohmann::json value = {1, 2, 3};
  auto v = catga::wire::decode_reply(catga::wire::encode_reply({}, &value));
  REQUIRE(v);
  CHECK(*v == value);

  auto none = catga::wire::decode_reply(catga::wire::encode_reply({}, nullptr));
  REQUIRE(none);
  CHECK(none->is_null());

  const catga::Error err{"payment_declined", "limit", false};
  auto e = catga::wire::decode_reply(catga::wire::encode_reply(err, nullptr));
  REQUIRE_FALSE(e);
  CHECK(e.error() == err);
}

TEST_CASE("a deferral's retry_after crosses the wire; out-of-range values are dropped") {
  catga::Error deferred = catga::make_error(catga::errc::deferred, "held by another consumer", true);
  deferred.retry_after = std::chrono::milliseconds(4'250);
  const auto body = catga::wire::encode_reply(deferred, nullptr);
  CHECK(nlohmann::json::parse(body)["error"]["retry_after_ms"] == 4'250);
  auto e = catga::wire::decode_reply(body);
  REQUIRE_FALSE(e);
  CHECK(e.error().code == catga::errc::deferred);
  CHECK(e.error().retryable);
  CHECK(e.error().retry_after == std::chrono::milliseconds(4'250));
  // Without one, none is written.
  CHECK_FALSE(nlohmann::json::parse(catga::wire::encode_reply(catga::make_error("x", "y", true), nullptr))["error"].contains(
      "retry_after_ms"));
  for (std::string_view hostile : {R"({"ok":false,"error":{"code":"deferred","retry_after_ms":-5}})",
                                   R"({"ok":false,"error":{"code":"deferred","retry_after_ms":10000000000000}})",
                                   R"({"ok":false,"error":{"code":"deferred","retry_after_ms":"soon"}})"}) {
    CAPTURE(hostile);
    auto r = catga::wire::decode_reply(hostile);
    REQUIRE_FALSE(r);
    CHECK(r.error().retry_after == std::chrono::milliseconds(0));
  }
}

TEST_CASE("decode_reply: malformed and partial replies") {
  for (std::string_view bad : {"", "not json", "[1,2]", "{}", R"({"ok":"yes"})", R"({"ok":1})"}) {
    CAPTURE(bad);
    auto r = catga::wire::decode_reply(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == catga::errc::malformed);
  }
  // A failure without details still fails, with defaults.
  auto bare = catga::wire::decode_reply(R"({"ok":false})");
  REQUIRE_FALSE(bare);
  CHECK(bare.error().code == catga::errc::internal);
  CHECK_FALSE(bare.error().message.empty());
  CHECK_FALSE(bare.error().retryable);

  auto odd = catga::wire::decode_reply(R"({"ok":false,"error":{"code":7,"message":"m","retryable":"yes"}})");
  REQUIRE_FALSE(odd);
  CHECK(odd.error().code == catga::errc::internal);
  CHECK(odd.error().message == "m");
  CHECK_FALSE(odd.error().retryable);
}

TEST_CASE("parse_json reports malformed bodies as errors") {
  CHECK(catga::wire::parse_json(R"({"a":1})").value() == nlohmann::json{{"a", 1}});
  auto bad = catga::wire::parse_json("{\"a\":");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == catga::errc::malformed);
}

TEST_CASE("subjects follow <prefix>.<kind>.<Type>") {
  CHECK(catga::wire::event_subject("catga", "OrderPlaced") == "catga.evt.OrderPlaced");
  CHECK(catga::wire::command_subject("shop", "PlaceOrder") == "shop.cmd.PlaceOrder");
  CHECK(catga::wire::dead_letter_subject("catga", "OrderPlaced") == "catga.dlq.OrderPlaced");
}

TEST_CASE("managed header names") {
  for (auto name : {catga::wire::kMsgId, catga::wire::kType, catga::wire::kCorrelationId, catga::wire::kCausationId,
                    catga::wire::kTraceparent, catga::wire::kContentType, catga::wire::kTimeoutMs}) {
    CAPTURE(name);
    CHECK(catga::wire::is_managed_header(name));
    // Same length, one character off (first, middle, last): not managed.
    for (std::size_t at : {std::size_t{0}, name.size() / 2, name.size() - 1}) {
      std::string near(name);
      near[at] = near[at] == 'x' ? 'y' : 'x';
      CAPTURE(near);
      CHECK_FALSE(catga::wire::is_managed_header(near));
    }
    CHECK_FALSE(catga::wire::is_managed_header(name.substr(1)));
    CHECK_FALSE(catga::wire::is_managed_header(std::string(name) + "x"));
  }
  CHECK_FALSE(catga::wire::is_managed_header("Tenant"));
  CHECK_FALSE(catga::wire::is_managed_header("nats-msg-id"));
  CHECK_FALSE(catga::wire::is_managed_header(""));
}

TEST_CASE("Catga-Message-Version: written above version 1, read as 1 when absent, malformed when invalid") {
  const auto ctx = catga::Context::root();
  CHECK_FALSE(written(ctx, "Reserved").get("Catga-Message-Version"));
  HeaderMap h;
  catga::wire::write_headers(
      ctx, "Reserved", [&](std::string_view k, std::string_view v) { h.entries.emplace_back(k, v); }, false, 1);
  CHECK_FALSE(h.get("Catga-Message-Version"));
  h.entries.clear();
  catga::wire::write_headers(
      ctx, "Reserved", [&](std::string_view k, std::string_view v) { h.entries.emplace_back(k, v); }, false, 12);
  CHECK(h.get(catga::wire::kMessageVersion) == std::optional<std::string_view>("12"));

  auto read_version = [](const HeaderMap& hm, int& version) {
    return catga::wire::read_context(
        [&](catga::wire::HeaderVisitor visit) {
          for (const auto& [k, v] : hm.entries) visit(k, v);
        },
        nullptr, &version);
  };
  int version = 0;
  auto got = read_version(h, version);
  REQUIRE(got);
  CHECK(version == 12);
  CHECK_FALSE(got->headers.get("Catga-Message-Version"));  // managed: not a user header
  CHECK(read(h));                                          // the caller need not ask for it

  h.erase("Catga-Message-Version");
  version = 0;
  REQUIRE(read_version(h, version));
  CHECK(version == 1);

  h.entries.emplace_back("Catga-Message-Version", "3");
  h.entries.emplace_back("Catga-Message-Version", "x");  // the first value counts
  REQUIRE(read_version(h, version));
  CHECK(version == 3);

  for (const char* bad : {"0", "-1", "+2", "2.0", "two", "", "2147483648", " 2"}) {
    CAPTURE(bad);
    h.erase("Catga-Message-Version");
    h.entries.emplace_back("Catga-Message-Version", bad);
    auto r = read(h);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == catga::errc::malformed);
    CHECK(r.error().message.find("Catga-Message-Version") != std::string::npos);
  }
}

TEST_CASE("read_context: a header name catga would not send is malformed, not passed to the handler") {
  // Found by fuzz_message_decoding: a name with a space ("Catga-Correlation-Id f",
  // a broken line) was kept in ctx.headers; written again it read back as
  // another message (a re-encoded message did not decode).
  for (const std::string& name : std::vector<std::string>{"Catga-Correlation-Id f", "x:y", "a\x01", "t\xc3\xa9"}) {
    CAPTURE(name);
    HeaderMap h;
    h.entries = {{"Nats-Msg-Id", "m-1"}, {"Catga-Type", "OrderPlaced"}, {name, "v"}};
    auto ctx = read(h);
    REQUIRE_FALSE(ctx);
    CHECK(ctx.error().code == catga::errc::malformed);
    CHECK(ctx.error().message.find("invalid header name") != std::string::npos);
  }
  HeaderMap fine;
  fine.entries = {{"Nats-Msg-Id", "m-1"}, {"Catga-Type", "OrderPlaced"}, {"X-Tenant_1.a~!", "v"}};
  CHECK(read(fine));
}
