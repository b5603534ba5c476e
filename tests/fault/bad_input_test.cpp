// Bad input: messages another client publishes with plain nats.c that catga
// cannot handle (malformed JSON, an unknown type, missing headers, an
// oversized body, invalid UTF-8) are dead-lettered with a clear error; the
// consumer neither crashes nor stalls, and good events around them flow.
#include <nats/nats.h>

#include <map>
#include <string>

#include "../nats/stream_reader.hpp"
#include "fault_common.hpp"
#include "nats_server.hpp"
#include "raw_nats.hpp"
#include "wait_for.hpp"

using namespace std::chrono_literals;

namespace {

struct Bad {
  std::string name;
  std::string body;
  std::map<std::string, std::string> headers;
  std::string expected_code;
};

std::uint64_t raw_publish(catga::test::RawNats& raw, const std::string& subject, const std::string& body,
                          const std::map<std::string, std::string>& headers) {
  natsMsg* m = nullptr;
  catga::test::check(natsMsg_Create(&m, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size())),
                     "natsMsg_Create");
  for (const auto& [k, v] : headers) catga::test::check(natsMsgHeader_Set(m, k.c_str(), v.c_str()), "header " + k);
  jsPubAck* ack = nullptr;
  jsErrCode jerr{};
  const natsStatus s = js_PublishMsg(&ack, raw.js(), m, nullptr, &jerr);
  natsMsg_Destroy(m);
  catga::test::check(s, "js_PublishMsg " + subject);
  const auto seq = ack->Sequence;
  jsPubAck_Destroy(ack);
  return seq;
}

std::map<std::string, std::string> good_headers(const std::string& id, const std::string& type = "Credit") {
  return {{"Nats-Msg-Id", id}, {"Catga-Type", type}, {"Content-Type", "application/json"}};
}

}  // namespace

TEST_CASE("malformed, unknown-type, header-less, oversized and non-UTF-8 messages are dead-lettered; the rest flows") {
  catga::test::NatsServer server;
  fault::Ledger ledger;
  fault::Member member({server.url()}, "member", ledger.effect());
  catga::test::RawNats raw(server.url());

  const std::string subject = "catga.evt.Credit";
  // Just under the server's 1 MiB max payload, so the dead-letter copy
  // (original body plus the Catga-* headers) still fits.
  const std::string oversized = "{\"id\":\"" + std::string(900 * 1024, 'x');
  const std::vector<Bad> bad{
      {"malformed_json", "{\"id\": \"bad-1\", \"n\": ", good_headers("bad-json"), "malformed"},
      {"unknown_type", R"({"id":"bad-2","n":2})", good_headers("bad-type", "NoSuchType"), "unknown_type"},
      {"missing_headers", R"({"id":"bad-3","n":3})", {}, "malformed"},
      // Over the consumer's max_body_bytes (512 KiB): refused before decoding.
      {"oversized_body", oversized, good_headers("bad-big"), "too_large"},
      {"invalid_utf8", "{\"id\":\"bad-\xff\xfe\",\"n\":5}", good_headers("bad-utf8"), "malformed"},
  };

  constexpr int kGood = 200;
  std::map<std::uint64_t, const Bad*> by_seq;
  int next_good = 0;
  auto publish_good = [&](int n) {
    for (int i = 0; i < n; ++i, ++next_good) {
      raw_publish(raw, subject, "{\"id\":\"" + fault::credit_id(next_good) + "\",\"n\":" + std::to_string(next_good) + "}",
                  good_headers(fault::credit_id(next_good)));
    }
  };
  publish_good(kGood / 2);
  for (const auto& b : bad) {
    by_seq[raw_publish(raw, subject, b.body, b.headers)] = &b;
    publish_good(kGood / 2 / static_cast<int>(bad.size()));
  }
  publish_good(kGood - next_good);

  // No stall: every good event is handled and every bad one dead-lettered.
  REQUIRE(catga::test::wait_for([&] { return ledger.distinct() == static_cast<std::size_t>(kGood); }, 60s));
  REQUIRE(catga::test::wait_for([&] { return nt::stream_count(raw, "CATGA_DLQ") == bad.size(); }, 60s));
  REQUIRE(catga::test::wait_for([&] { return fault::group_drained(server.url(), "ledger_Credit"); }, 60s));

  std::size_t dead_lettered = 0;
  for (const auto& d : nt::read_stream(raw, "CATGA_DLQ")) {
    const auto it = by_seq.find(std::stoull(d.header("Catga-Original-Seq")));
    REQUIRE_MESSAGE(it != by_seq.end(), "unexpected dead letter " << d.header("Catga-Error"));
    const Bad& b = *it->second;
    INFO(b.name << ": " << d.header("Catga-Error"));
    MESSAGE(b.name << " -> " << d.header("Catga-Error-Code") << ": " << d.header("Catga-Error").substr(0, 160));
    CHECK(d.subject == "catga.dlq.Credit");
    CHECK(d.header("Catga-Error-Code") == b.expected_code);
    CHECK(d.header("Catga-Error").size() > 10);  // says what is wrong
    CHECK(d.header("Catga-Original-Subject") == subject);
    CHECK(d.body == b.body);  // the evidence is kept as it was
    ++dead_lettered;
  }
  CHECK(dead_lettered == bad.size());

  auto sent = fault::credit_ids(kGood);
  auto t = ledger.tally(sent);
  // The bad ones count as delivered when they reached the dead letters.
  t.sent += bad.size();
  t.delivered += dead_lettered;
  t.lost = t.sent - t.delivered;
  fault::report("bad_input", t);
}
