// MessageId text form and W3C traceparent parsing/printing.

#include <doctest/doctest.h>

#include <string>

#include <catga/context.hpp>
#include <catga/message_id.hpp>

namespace {

constexpr std::string_view kW3cExample = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

bool is_lower_hex(std::string_view s) { return s.find_first_not_of("0123456789abcdef") == std::string_view::npos; }

}  // namespace

TEST_CASE("generated ids print as 32 lowercase hex digits and parse back") {
  for (int i = 0; i < 100; ++i) {
    const auto id = catga::MessageId::generate();
    const std::string text = id.text().str();
    CHECK(text.size() == 32);
    CHECK(is_lower_hex(text));
    const auto back = catga::MessageId::parse(text);
    REQUIRE(back);
    CHECK(*back == id);
    CHECK(back->is_binary());
    CHECK(back->hi() == id.hi());
    CHECK(back->lo() == id.lo());
  }
}

TEST_CASE("from_parts prints big-endian hex") {
  const auto id = catga::MessageId::from_parts(0x0123456789abcdefULL, 0xfedcba9876543210ULL);
  CHECK(id.text().view() == "0123456789abcdeffedcba9876543210");
  CHECK(catga::MessageId::parse("0123456789abcdeffedcba9876543210") == id);
}

TEST_CASE("foreign id text is kept exactly") {
  for (std::string_view text : {"order-42:retry", "550e8400-e29b-41d4-a716-446655440000", "x",
                                "4BF92F3577B34DA6A3CE929D0E0E4736",  // uppercase: not canonical, kept as text
                                "00000000000000000000000000000000"}) {
    CAPTURE(text);
    const auto id = catga::MessageId::parse(text);
    REQUIRE(id);
    CHECK(id->text().view() == text);
    CHECK_FALSE(id->is_binary());
    CHECK_FALSE(id->is_nil());
    CHECK(*id == *catga::MessageId::parse(text));
  }
  CHECK(*catga::MessageId::parse("a") != *catga::MessageId::parse("b"));
  CHECK(*catga::MessageId::parse("ab") != *catga::MessageId::parse("a"));
  // The text form never equals a binary id, even with the same letters in another case.
  CHECK(*catga::MessageId::parse("4BF92F3577B34DA6A3CE929D0E0E4736") !=
        *catga::MessageId::parse("4bf92f3577b34da6a3ce929d0e0e4736"));
}

TEST_CASE("ids of 64 characters are accepted; longer, empty or non-printable ones are not") {
  const std::string max(catga::MessageId::kMaxText, 'z');
  REQUIRE(catga::MessageId::parse(max));
  CHECK(catga::MessageId::parse(max)->text().view() == max);
  CHECK_FALSE(catga::MessageId::parse(max + "z"));
  CHECK_FALSE(catga::MessageId::parse(""));
  CHECK_FALSE(catga::MessageId::parse("has space"));
  CHECK_FALSE(catga::MessageId::parse("tab\there"));
  CHECK_FALSE(catga::MessageId::parse("nl\n"));
  CHECK_FALSE(catga::MessageId::parse("caf\xc3\xa9"));
  CHECK_FALSE(catga::MessageId::parse(std::string_view("nul\0x", 5)));
}

TEST_CASE("the nil id") {
  const catga::MessageId nil{};
  CHECK(nil.is_nil());
  CHECK_FALSE(static_cast<bool>(nil));
  CHECK(nil.text().view().empty());
  CHECK(nil == catga::MessageId{});
  CHECK(nil != catga::MessageId::generate());
}

TEST_CASE("traceparent: the W3C example parses; its span becomes the parent") {
  const auto tc = catga::TraceContext::parse(kW3cExample);
  REQUIRE(tc);
  CHECK(tc->trace_hi == 0x4bf92f3577b34da6ULL);
  CHECK(tc->trace_lo == 0xa3ce929d0e0e4736ULL);
  CHECK(tc->parent_span_id == 0x00f067aa0ba902b7ULL);
  CHECK(tc->span_id != 0);
  CHECK(tc->span_id != tc->parent_span_id);
  CHECK(tc->flags == 0x01);
  CHECK(tc->valid());

  // Printed with our span: same trace id and flags, 55 characters.
  const std::string printed = tc->traceparent().str();
  CHECK(printed.size() == 55);
  CHECK(printed.substr(0, 36) == "00-4bf92f3577b34da6a3ce929d0e0e4736-");
  CHECK(printed.substr(52) == "-01");
  CHECK(is_lower_hex(printed.substr(36, 16)));
}

TEST_CASE("traceparent: print then parse keeps the trace and links the spans") {
  catga::TraceContext tc;
  tc.trace_hi = 0x0af7651916cd43ddULL;
  tc.trace_lo = 0x8448eb211c80319cULL;
  tc.span_id = 0xb7ad6b7169203331ULL;
  tc.flags = 0;
  CHECK(tc.traceparent().view() == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
  const auto back = catga::TraceContext::parse(tc.traceparent());
  REQUIRE(back);
  CHECK(back->trace_hi == tc.trace_hi);
  CHECK(back->trace_lo == tc.trace_lo);
  CHECK(back->parent_span_id == tc.span_id);
  CHECK(back->flags == 0);
}

TEST_CASE("traceparent: flags other than sampled are kept") {
  const auto tc = catga::TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff");
  REQUIRE(tc);
  CHECK(tc->flags == 0xff);
}

TEST_CASE("traceparent: a future version may carry more fields after a dash") {
  const auto tc = catga::TraceContext::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future");
  REQUIRE(tc);
  CHECK(tc->trace_hi == 0x4bf92f3577b34da6ULL);
  CHECK(tc->parent_span_id == 0x00f067aa0ba902b7ULL);
}

TEST_CASE("traceparent: invalid values are refused") {
  for (std::string_view bad : {
           "", "00",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",           // no flags
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",         // short flags
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  // version 00 has exactly 4 fields
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",        // all-zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",        // all-zero parent id
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",        // forbidden version
           "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",        // wrong separators
           "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",        // not hex
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",        // not hex
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",        // not hex
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",        // uppercase flags
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",       // trailing space
           " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",       // leading space
       }) {
    CAPTURE(bad);
    CHECK_FALSE(catga::TraceContext::parse(bad).has_value());
  }
}

TEST_CASE("traceparent: W3C allows lowercase hex only, and a hex version") {
  for (std::string_view bad : {
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   // uppercase trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",   // uppercase parent id
           "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // version not hex
           "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",  // future version: extra data needs a dash
       }) {
    CAPTURE(bad);
    CHECK_FALSE(catga::TraceContext::parse(bad).has_value());
  }
}

TEST_CASE("an invalid trace context prints but is not valid") {
  catga::TraceContext tc;
  CHECK_FALSE(tc.valid());
  tc.trace_lo = 1;
  CHECK_FALSE(tc.valid());  // no span
  tc.span_id = 2;
  CHECK(tc.valid());
}

// issue 24: W3C asks for random trace ids, and ratio samplers (OpenTelemetry's
// TraceIdRatioBased) compare the trace id's low 56 bits with a threshold.
// Trace ids that count up from a per-thread base (as message ids do) put a
// whole run of traces on one side of the threshold.
TEST_CASE("root trace ids and span ids are random, so a ratio sampler samples its ratio") {
  constexpr int kTraces = 2000;
  constexpr std::uint64_t kLow56 = (std::uint64_t{1} << 56) - 1;
  int sampled = 0;
  std::uint64_t previous_hi = 0;
  int same_hi = 0;
  int odd_span = 0;
  for (int i = 0; i < kTraces; ++i) {
    const auto ctx = catga::Context::root();
    REQUIRE(ctx.trace.valid());
    // 50 %: the low 56 bits below half their range.
    if ((ctx.trace.trace_lo & kLow56) < (kLow56 >> 1)) ++sampled;
    if (ctx.trace.trace_hi == previous_hi) ++same_hi;
    previous_hi = ctx.trace.trace_hi;
    if ((ctx.trace.span_id & 1) != 0) ++odd_span;
  }
  // Binomial(2000, 0.5): sd 22; 800..1200 is 9 sd either side.
  CHECK(sampled > 800);
  CHECK(sampled < 1200);
  CHECK(same_hi == 0);
  CHECK(odd_span > 800);
  CHECK(odd_span < 1200);
}

TEST_CASE("a child of a context without a trace starts a random trace, not the message id") {
  catga::Context parent;  // no trace, e.g. built by hand
  parent.message_id = catga::MessageId::generate();
  const auto a = parent.child();
  const auto b = parent.child();
  CHECK(a.trace.valid());
  CHECK(b.trace.valid());
  CHECK(a.trace.trace_hi != b.trace.trace_hi);
  CHECK(a.trace.trace_hi != a.message_id.hi());
}
