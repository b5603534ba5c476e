// Pure functions of catga::nats (no server): ack subjects, status lines,
// consumer names, error mapping, option helpers.
#include <doctest/doctest.h>

#include "catga/nats/connection.hpp"
#include "catga/nats/options.hpp"
#include "nats/src/ack_reply.hpp"
#include "nats/src/error.hpp"
#include "nats/src/log.hpp"
#include "nats/src/message.hpp"
#include "nats/src/natsc_internals.hpp"
#include "nats/src/pending_table.hpp"
#include "nats/src/provisioning.hpp"

#include <malloc.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

using namespace catga::nats::detail;

TEST_CASE("ack subjects: v1 and v2 forms, and what is not one") {
  auto v1 = parse_ack_reply("$JS.ACK.CATGA_EVENTS.billing_OrderPlaced.3.1042.998.1700000000123456789.17");
  REQUIRE(v1);
  CHECK(v1->stream == "CATGA_EVENTS");
  CHECK(v1->consumer == "billing_OrderPlaced");
  CHECK(v1->delivered == 3);
  CHECK(v1->stream_seq == 1042);
  CHECK(v1->consumer_seq == 998);
  CHECK(v1->timestamp_ns == 1700000000123456789);
  CHECK(v1->pending == 17);
  CHECK(v1->domain.empty());

  auto v2 = parse_ack_reply("$JS.ACK.hub.ACCHASH.S.C.1.2.3.4.5.tok");
  REQUIRE(v2);
  CHECK(v2->domain == "hub");
  CHECK(v2->stream == "S");
  CHECK(v2->consumer == "C");
  CHECK(v2->delivered == 1);
  CHECK(v2->stream_seq == 2);
  CHECK(v2->pending == 5);
  auto v2_no_domain = parse_ack_reply("$JS.ACK._.ACCHASH.S.C.7.8.9.10.11");
  REQUIRE(v2_no_domain);
  CHECK(v2_no_domain->domain.empty());
  CHECK(v2_no_domain->delivered == 7);

  CHECK_FALSE(parse_ack_reply(""));
  CHECK_FALSE(parse_ack_reply("_INBOX.abc.1"));
  CHECK_FALSE(parse_ack_reply("$JS.ACK.S.C.1.2.3.4"));          // too short
  CHECK_FALSE(parse_ack_reply("$JS.ACK.S.C.x.2.3.4.5"));        // not a number
  CHECK_FALSE(parse_ack_reply("$JS.ACK.a.b.S.C.1.2.3.4"));      // 10 tokens: neither form
  CHECK_FALSE(parse_ack_reply("$JS.ACK.S.C.-1.2.3.4.5"));
  CHECK_FALSE(parse_ack_reply("$JS.NAK.S.C.1.2.3.4.5"));

  // A consumer's own prefix: the same fields; names with a dot never match.
  const auto mine = AckPrefix::of("CATGA_EVENTS", "billing_OrderPlaced");
  CHECK(mine.text() == "$JS.ACK.CATGA_EVENTS.billing_OrderPlaced.");
  auto p1 = parse_ack_reply("$JS.ACK.CATGA_EVENTS.billing_OrderPlaced.3.1042.998.1700000000123456789.17", mine);
  REQUIRE(p1);
  CHECK(p1->stream == "CATGA_EVENTS");
  CHECK(p1->consumer == "billing_OrderPlaced");
  CHECK(p1->delivered == 3);
  CHECK(p1->stream_seq == 1042);
  CHECK(p1->timestamp_ns == 1700000000123456789);
  CHECK(p1->pending == 17);
  CHECK(parse_ack_reply("$JS.ACK.hub.ACCHASH.S.C.1.2.3.4.5.tok", mine)->domain == "hub");  // not ours: general path
  CHECK_FALSE(parse_ack_reply("$JS.ACK.CATGA_EVENTS.billing_OrderPlaced.3.1042.998.17", mine));
  CHECK(AckPrefix::of("S.X", "C").text().empty());
  CHECK(AckPrefix::of("S", "").text().empty());
}

// The plain reading of an ack subject (split at every '.', std::from_chars
// for each number): parse_ack_reply's fast scan must agree with it.
std::optional<AckMetadata> reference_ack_reply(std::string_view reply) {
  std::vector<std::string_view> t;
  for (std::size_t start = 0;;) {
    const auto dot = reply.find('.', start);
    t.push_back(reply.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (t.size() > 16 || t.size() < 9 || t[0] != "$JS" || t[1] != "ACK" || t.size() == 10) return std::nullopt;
  const std::size_t i = t.size() == 9 ? 2 : 4;
  AckMetadata m;
  if (i == 4 && t[2] != "_") m.domain = t[2];
  m.stream = t[i];
  m.consumer = t[i + 1];
  auto number = [](std::string_view s, auto& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return !s.empty() && ec == std::errc() && p == s.data() + s.size();
  };
  if (m.stream.empty() || m.consumer.empty() || !number(t[i + 2], m.delivered) || !number(t[i + 3], m.stream_seq) ||
      !number(t[i + 4], m.consumer_seq) || !number(t[i + 5], m.timestamp_ns) || !number(t[i + 6], m.pending)) {
    return std::nullopt;
  }
  return m;
}

TEST_CASE("ack subjects: the fast scan and the prefix path agree with a plain split on 200,000 mutated subjects") {
  const std::string bases[] = {
      "$JS.ACK.CATGA_EVENTS.billing_OrderPlaced.3.1042.998.1700000000123456789.17",
      "$JS.ACK.hub.ACCHASH.S.C.1.2.3.4.5.tok",
      "$JS.ACK._.ACCHASH.STREAM_WITH_A_LONG_NAME.consumer-with-a-long-name.18446744073709551615.2.3.-4.5",
      "$JS.ACK.S.C.18446744073709551616.2.3.9223372036854775807.5",
      "$JS.ACK.S.C.1.2.3.9223372036854775808.5",
      "$JS.ACK.a.b.S.C.1.2.3.4.5.t.u.v.w.x"};
  // The prefix each base's consumer would hold (the v2 forms never match theirs).
  const AckPrefix prefixes[] = {AckPrefix::of("CATGA_EVENTS", "billing_OrderPlaced"), AckPrefix::of("S", "C"),
                                AckPrefix::of("STREAM_WITH_A_LONG_NAME", "consumer-with-a-long-name"),
                                AckPrefix::of("S", "C"),
                                AckPrefix::of("S", "C"),
                                AckPrefix::of("S", "C")};
  int by_prefix = 0;
  const std::string_view alphabet = "$JSACK._.0123456789-+ xz";
  std::mt19937 rng(20261203);
  int parsed = 0;
  for (int n = 0; n < 200'000; ++n) {
    std::string s = bases[n % std::size(bases)];
    const int edits = static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t pos = rng() % (s.size() + 1);
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0: if (pos < s.size()) s[pos] = c; break;
        case 1: s.insert(pos, 1, c); break;
        default: if (pos < s.size()) s.erase(pos, 1);
      }
    }
    const auto plain = reference_ack_reply(s);
    // The general scan, and the one-pass read behind a consumer's own prefix.
    for (const auto& fast : {parse_ack_reply(s), parse_ack_reply(s, prefixes[n % std::size(bases)])}) {
      REQUIRE_MESSAGE(fast.has_value() == plain.has_value(), s);
      if (!fast) continue;
      CHECK_MESSAGE((fast->domain == plain->domain && fast->stream == plain->stream &&
                     fast->consumer == plain->consumer && fast->delivered == plain->delivered &&
                     fast->stream_seq == plain->stream_seq && fast->consumer_seq == plain->consumer_seq &&
                     fast->timestamp_ns == plain->timestamp_ns && fast->pending == plain->pending),
                    s);
    }
    if (plain) ++parsed;
    if (plain && s.starts_with(prefixes[n % std::size(bases)].text())) ++by_prefix;
  }
  CHECK(parsed > 20'000);     // both answers were exercised
  CHECK(by_prefix > 10'000);  // and the prefix path with them
}

// A message's headers as a receiver reads them, sorted. (nats.c trims a
// received value; a message built through its header API holds the value
// as given until nats.c writes it out, so both are trimmed here.)
std::vector<std::pair<std::string, std::string>> headers_of(natsMsg* m) {
  std::vector<std::pair<std::string, std::string>> out;
  for_each_header(m, [&](std::string_view k, std::string_view v) {
    const auto first = v.find_first_not_of(" \t");
    v = first == std::string_view::npos ? std::string_view() : v.substr(first, v.find_last_not_of(" \t") - first + 1);
    out.emplace_back(k, v);
  });
  std::sort(out.begin(), out.end());
  return out;
}

TEST_CASE("nats.c internals: checked at start-up against nats.c's API, and the switch turns them off") {
  REQUIRE(nats_Open(-1) == NATS_OK);  // messages are freed through nats.c's collector
  CHECK(natsc_internals::switch_allows(nullptr));
  CHECK(natsc_internals::switch_allows("on"));
  for (const char* off : {"0", "off", "OFF", "false", "no"}) CHECK_FALSE(natsc_internals::switch_allows(off));
  CHECK(natsc_internals::version_known(0x030401));  // Debian 12
  CHECK(natsc_internals::version_known(0x030A01));  // Debian 13
  CHECK_FALSE(natsc_internals::version_known(0x020000));
  CHECK_FALSE(natsc_internals::version_known(0x030E00));
  const bool known = natsc_internals::version_known(nats_GetVersionNumber());
  // The linked nats.c lays out messages as catga reads them (3.4.1 here; 3.10.1 by hand).
  if (known) CHECK(natsc_internals::self_check() == "");
  // nats_unit_internals_off runs this file with CATGA_NATSC_INTERNALS=off.
  const bool allowed = natsc_internals::switch_allows(std::getenv(natsc_internals::kSwitch));
  CHECK(natsc_internals::enabled() == (allowed && known));
  // With them off, received headers go through nats.c's API and messages are
  // built through it (HeaderBlock finds no block).
  if (!natsc_internals::enabled()) {
    const catga::MessageInfo event{"OrderPlaced", catga::MessageKind::event, catga::QoS::at_least_once, 0, false,
                                   nullptr, nullptr, nullptr, nullptr};
    auto m = make_message("catga.evt.OrderPlaced", {event, R"({"id":1})", catga::Context::root()});
    REQUIRE(m);
    CHECK(natsc_internals::raw_header_block(m->get()).empty());
    CHECK_FALSE(HeaderBlock(m->get()).valid());
    CHECK(get_header(m->get(), "Catga-Type") == "OrderPlaced");
  }
}

TEST_CASE("a message catga destroys is freed on the destroying thread, not by nats.c's collector thread") {
  // natsMsg_Destroy hands each message to nats.c's collector thread and
  // wakes it when it sleeps: a thread switch per message, about a quarter of
  // the sample's context switches under load. A 32 MiB message is one
  // mmapped block, unmapped the moment it is freed.
  REQUIRE(nats_Open(-1) == NATS_OK);
  constexpr std::size_t kSize = std::size_t{32} << 20;
  const std::string body(kSize, 'x');
  natsMsg* m = nullptr;
  REQUIRE(natsMsg_Create(&m, "catga.big", nullptr, body.data(), static_cast<int>(body.size())) == NATS_OK);
  const std::size_t before = mallinfo2().hblkhd;
  catga::nats::native::destroy_message(m);
  const std::size_t after = mallinfo2().hblkhd;
  if (before < kSize) {
    MESSAGE("this allocator does not report mmapped memory (sanitizer build): not checked");
    return;
  }
  if (natsc_internals::enabled()) {
    CHECK(before - after >= kSize);  // before: still mapped, waiting for the collector
  }
  // Without the internals (nats_unit_internals_off) nats.c frees it later:
  // nothing to check but that it is destroyed once.
}

TEST_CASE("a header is read as itself when a longer name starts with it (nats.c's lookup would confuse them)") {
  // nats.c hashes a name without its last 2-3 bytes past a multiple of 4 and
  // compares only the looked-up name's length: natsMsgHeader_Get of
  // "Catga-Correlation-Id" answered "Catga-Correlation-Id-1" (fuzz target).
  REQUIRE(nats_Open(-1) == NATS_OK);
  natsMsg* raw = nullptr;
  REQUIRE(natsMsg_Create(&raw, "catga.evt.OrderPlaced", nullptr, "{}", 2) == NATS_OK);
  MsgHandle m(raw);
  REQUIRE(natsMsgHeader_Set(m.get(), "Nats-Msg-Id", "id-1") == NATS_OK);
  REQUIRE(natsMsgHeader_Set(m.get(), "Catga-Correlation-Id", "corr-1") == NATS_OK);
  REQUIRE(natsMsgHeader_Set(m.get(), "Catga-Correlation-Id-1", "spoofed") == NATS_OK);
  REQUIRE(natsMsgHeader_Add(m.get(), "Catga-Correlation-Id-1", "again") == NATS_OK);
  REQUIRE(natsMsgHeader_Set(m.get(), "Catga-Type-x", "Other") == NATS_OK);  // no "Catga-Type" at all
  // A chain: each name extends the one before (the fuzz target's next find).
  REQUIRE(natsMsgHeader_Set(m.get(), "X-Chain", "1") == NATS_OK);
  REQUIRE(natsMsgHeader_Set(m.get(), "X-Chain-1", "2") == NATS_OK);
  REQUIRE(natsMsgHeader_Set(m.get(), "X-Chain-12", "3") == NATS_OK);
  const char* nats_says = nullptr;
  natsMsgHeader_Get(m.get(), "Catga-Correlation-Id", &nats_says);
  MESSAGE("nats.c's own lookup of Catga-Correlation-Id: " << std::string(nats_says != nullptr ? nats_says : "(none)"));

  CHECK(get_header(m.get(), "Catga-Correlation-Id") == "corr-1");
  CHECK(get_header(m.get(), "Catga-Correlation-Id-1") == "spoofed");
  CHECK_FALSE(get_header(m.get(), "Catga-Type"));  // only a longer name exists
  CHECK(get_header(m.get(), "Catga-Type-x") == "Other");
  std::vector<std::string> seen;
  for_each_header(m.get(), [&](std::string_view k, std::string_view v) {
    seen.push_back(std::string(k) + "=" + std::string(v));
  });
  std::sort(seen.begin(), seen.end());
  std::string listed;
  for (const auto& x : seen) listed += x + " ";
  INFO("seen: " << listed);
  CHECK(seen == std::vector<std::string>{"Catga-Correlation-Id-1=again", "Catga-Correlation-Id-1=spoofed",
                                         "Catga-Correlation-Id=corr-1", "Catga-Type-x=Other", "Nats-Msg-Id=id-1",
                                         "X-Chain-12=3", "X-Chain-1=2", "X-Chain=1"});
  CHECK(get_header(m.get(), "X-Chain") == "1");
  CHECK(get_header(m.get(), "X-Chain-1") == "2");
  // Reading twice gives the same (the longer names were put back).
  CHECK(get_header(m.get(), "Catga-Correlation-Id") == "corr-1");
  const char** values = nullptr;
  int n = 0;
  REQUIRE(natsMsgHeader_Values(m.get(), "Catga-Correlation-Id-1", &values, &n) == NATS_OK);
  CHECK(n == 2);
  std::free(static_cast<void*>(values));
}

TEST_CASE("make_message: the ready header block and nats.c's header API give the same message") {
  REQUIRE(nats_Open(-1) == NATS_OK);  // messages are freed through nats.c's collector
  if (!natsc_internals::enabled()) return;  // make_message_from_block needs them
  auto ctx = catga::Context::root();
  ctx.deadline = catga::Context::Clock::now() + std::chrono::seconds(5);
  ctx.headers.set("Tenant", "acme");
  ctx.headers.set("Note", "two\r\nlines\r");
  ctx.headers.set("Padded", "  value  ");
  ctx.headers.set("Big", std::string(10'000, 'x'));
  ctx.headers.set("Nul", std::string_view("before\0after", 12));
  ctx.headers.set("tracestate", "k=v");
  // A command: it carries the deadline (Catga-Timeout-Ms); events do not.
  const catga::MessageInfo info{"OrderPlaced", catga::MessageKind::command, catga::QoS::at_least_once, 0, false,
                                nullptr, nullptr, nullptr, nullptr};
  const std::string body = R"({"id":1})";
  const std::string subject = "catga.evt.OrderPlaced";
  {
    const catga::MessageInfo event{"OrderPlaced", catga::MessageKind::event, catga::QoS::at_least_once, 0, false,
                                   nullptr, nullptr, nullptr, nullptr};
    for (auto make : {&make_message_from_block, &make_message_via_api}) {
      auto m = make(subject, {event, body, ctx}, nullptr);
      REQUIRE(m);
      const auto h = headers_of(m->get());
      CHECK(h.size() == 11);
      for (const auto& [k, v] : h) CHECK(k != "Catga-Timeout-Ms");
    }
  }
  for (const char* reply : {static_cast<const char*>(nullptr), "_INBOX.reply"}) {
    auto block = make_message_from_block(subject, {info, body, ctx}, reply);
    auto api = make_message_via_api(subject, {info, body, ctx}, reply);
    REQUIRE(block);
    REQUIRE(api);
    CHECK(subject_of(block->get()) == subject);
    CHECK(reply_of(block->get()) == reply_of(api->get()));
    CHECK(body_of(block->get()) == body);
    CHECK(body_of(api->get()) == body);
    const auto from_block = headers_of(block->get());
    CHECK(from_block == headers_of(api->get()));
    // Both are right, not merely alike: 6 managed headers and the 6 above.
    CHECK(from_block.size() == 12);
    const auto value = [&](std::string_view name) {
      for (const auto& [k, v] : from_block) {
        if (k == name) return v;
      }
      return std::string("<absent>");
    };
    CHECK(value("Nats-Msg-Id") == std::string(ctx.message_id.text().view()));
    CHECK(value("Catga-Type") == "OrderPlaced");
    CHECK(value("Note") == "two  lines");  // CR and LF become spaces; nats.c trims the end
    CHECK(value("Big") == std::string(8192, 'x'));
    CHECK(value("Nul") == "before");
  }
  // Names nats.c would send as they are, breaking the block: refused both ways.
  for (const std::string_view bad : {"a b", "x:y", "tab\there", "\x7f", "caf\xc3\xa9"}) {
    auto c = catga::Context::root();
    c.headers.set(bad, "v");
    for (const bool use_block : {true, false}) {
      auto r = use_block ? make_message_from_block(subject, {info, body, c}, nullptr)
                         : make_message_via_api(subject, {info, body, c}, nullptr);
      REQUIRE_FALSE(r);
      CHECK(r.error().code == catga::errc::validation);
      CHECK(r.error().message.find("invalid header name") != std::string::npos);
    }
  }
}

TEST_CASE("pending table: the same answers as a map, through wrap-around and backward shifts") {
  // A 16-slot table (at most 8 entries) over keys that collide a lot: every
  // probe run, wrap-around and backward shift is exercised.
  PendingTable<int> table(8);
  std::unordered_map<natsMsg*, int> reference;
  std::vector<char> storage(64);
  auto key = [&](std::size_t i) { return reinterpret_cast<natsMsg*>(storage.data() + i); };
  std::mt19937 rng(20261122);
  for (int step = 0; step < 200'000; ++step) {
    natsMsg* k = key(rng() % storage.size());
    if (rng() % 2 == 0) {
      const bool fits = reference.size() < 8 && reference.count(k) == 0;
      REQUIRE(table.insert(k, step) == fits);
      if (fits) reference[k] = step;
    } else {
      auto got = table.take(k);
      auto it = reference.find(k);
      REQUIRE(got.has_value() == (it != reference.end()));
      if (got) {
        REQUIRE(*got == it->second);
        reference.erase(it);
      }
    }
    REQUIRE(table.size() == reference.size());
  }
  CHECK_FALSE(table.insert(nullptr, 1));
  CHECK_FALSE(table.take(nullptr).has_value());
}

TEST_CASE("pull status codes") {
  CHECK(parse_status_code("408") == 408);
  CHECK(parse_status_code("404") == 404);
  CHECK(parse_status_code(" 409") == 409);
  CHECK(parse_status_code("100 Idle Heartbeat") == 100);
  CHECK(parse_status_code("") == 0);
  CHECK(parse_status_code("abc") == 0);
}

TEST_CASE("consumer names are valid durable names, distinct per group and type") {
  CHECK(consumer_name("billing", "OrderPlaced") == "billing_OrderPlaced");
  const auto dotted = consumer_name("billing.eu", "OrderPlaced");
  CHECK(dotted.find('.') == std::string::npos);
  CHECK(dotted.rfind("billing_eu_OrderPlaced_", 0) == 0);
  CHECK(dotted != consumer_name("billing_eu", "OrderPlaced"));
  CHECK(consumer_name("a b*>", "T").find_first_of(" *>.") == std::string::npos);
  CHECK(consumer_name("g", "T") != consumer_name("g", "U"));
}

TEST_CASE("nats.c failures map to catga errors with the right code and retryability") {
  auto timeout = to_error(NATS_TIMEOUT, "publish 'X'");
  CHECK(timeout.code == "timeout");
  CHECK(timeout.retryable);
  CHECK(timeout.message.rfind("publish 'X': ", 0) == 0);
  for (auto s : {NATS_NO_SERVER, NATS_CONNECTION_CLOSED, NATS_CONNECTION_DISCONNECTED, NATS_IO_ERROR,
                 NATS_STALE_CONNECTION, NATS_NOT_YET_CONNECTED}) {
    auto e = to_error(s, "x");
    CHECK(e.code == "unavailable");
    CHECK(e.retryable);
  }
  auto nobody = to_error(NATS_NO_RESPONDERS, "request 'Add'", Surface::request);
  CHECK(nobody.code == "no_handler");
  CHECK_FALSE(nobody.retryable);
  auto no_stream = to_error(NATS_NO_RESPONDERS, "publish", Surface::jetstream);
  CHECK(no_stream.code == "unavailable");
  CHECK(no_stream.retryable);
  auto wrong_seq = to_error(NATS_ERR, JSStreamWrongLastSequenceErr, "append");
  CHECK(wrong_seq.code == "conflict");
  CHECK_FALSE(wrong_seq.retryable);
  CHECK(wrong_seq.message.find("10071") != std::string::npos);
  auto auth = to_error(NATS_CONNECTION_AUTH_FAILED, "connect");
  CHECK(auth.code == "unavailable");
  CHECK_FALSE(auth.retryable);
  CHECK(to_error(NATS_INVALID_SUBJECT, "x").code == "validation");
  CHECK(to_error(NATS_ERR, JSClusterNotAvailErr, "x").retryable);
}

TEST_CASE("helpers: URL redaction, header values, stream names") {
  CHECK(redact_url("nats://alice:secret@host:4222") == "nats://***@host:4222");
  CHECK(redact_url("tls://token@host") == "tls://***@host");
  CHECK(redact_url("nats://host:4222") == "nats://host:4222");
  CHECK(redact_url("nats://host:4222/a@b") == "nats://host:4222/a@b");
  CHECK(header_safe("a\r\nb") == "a  b");
  CHECK(header_safe(std::string(5000, 'x')).size() == 1024);
  catga::nats::JetStreamOptions o;
  CHECK(o.events_stream() == "CATGA_EVENTS");
  CHECK(o.dead_letter_stream() == "CATGA_DLQ");
  o.prefix = "my-shop.eu";
  CHECK(o.events_stream() == "MY_SHOP_EU_EVENTS");
}

TEST_CASE("server URL lists (NATS_URL, the sample's --nats-url): items trimmed, empty ones dropped") {
  using V = std::vector<std::string>;
  using catga::nats::split_server_urls;
  CHECK(split_server_urls("nats://a:4222") == V{"nats://a:4222"});
  CHECK(split_server_urls(" nats://a:4222 ,\tnats://b:4222") == V{"nats://a:4222", "nats://b:4222"});
  CHECK(split_server_urls("nats://a:4222,") == V{"nats://a:4222"});
  CHECK(split_server_urls(",nats://a:4222,, ,nats://b:4222") == V{"nats://a:4222", "nats://b:4222"});
  CHECK(split_server_urls("").empty());
  CHECK(split_server_urls(" , ,").empty());
}

#include <filesystem>
#include <fstream>
#include <sstream>

namespace connection_api {
template <class T>
concept exposes_impl = requires(const T& c) { c.impl(); };
template <class T>
concept names_impl = requires { typename T::Impl; };
}  // namespace connection_api

TEST_CASE("Connection: its nats.c side is not public API (no impl(), no nameable Impl)") {
  // catga::nats reaches it through detail::impl_of (connection_impl.hpp);
  // others through catga/nats/native/connection.hpp.
  CHECK_FALSE(connection_api::exposes_impl<catga::nats::Connection>);
  CHECK_FALSE(connection_api::names_impl<catga::nats::Connection>);
}

TEST_CASE("public headers expose catga types only: nats.h stays private") {
  const std::filesystem::path dir = CATGA_NATS_PUBLIC_HEADERS;
  int headers = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    // native/ is the opt-in nats.c level: it includes nats.h on purpose.
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    INFO(entry.path().string());
    CHECK(text.str().find("<nats/nats.h>") == std::string::npos);
    CHECK(text.str().find("<nats/status.h>") == std::string::npos);
    CHECK(text.str().find("natsConnection") == std::string::npos);
    ++headers;
  }
  CHECK(headers >= 5);
}
