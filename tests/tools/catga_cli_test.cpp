// The `catga` operator CLI against a real nats-server: dead letters made by
// a failing handler (and one published by hand, as another language would),
// then list / show / replay / purge / streams / consumers, as tables and JSON.
#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <cstdlib>
#include <initializer_list>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "catga/mediator.hpp"
#include "catga/nats/jetstream_transport.hpp"
#include "catga/outbox/outbox_store.hpp"
#include "nats_server.hpp"
#include "raw_nats.hpp"
#include "run_cli.hpp"
#include "wait_for.hpp"

using catga::test::run_cli;
using catga::test::wait_for;
using namespace std::chrono_literals;

namespace cli_test {

struct InvoiceDue {
  std::string invoice;
  int amount = 0;
};
CATGA_EVENT(InvoiceDue, invoice, amount)

struct ReportRequested {
  int n = 0;
};
CATGA_EVENT(ReportRequested, n)

}  // namespace cli_test

namespace {

using cli_test::InvoiceDue;
using cli_test::ReportRequested;

catga::test::CliResult cli(const catga::test::NatsServer& server, std::vector<std::string> args) {
  args.insert(args.begin(), {"--server", server.url()});
  auto r = run_cli(CATGA_CLI, args);
  // CATGA_TEST_VERBOSE=1 shows what an operator would see.
  if (std::getenv("CATGA_TEST_VERBOSE") != nullptr) std::cout << "$ catga " << args.back() << "\n" << r.out << r.err;
  return r;
}

nlohmann::json cli_json(const catga::test::NatsServer& server, std::vector<std::string> args) {
  args.insert(args.begin(), "--json");
  auto r = cli(server, args);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(r.out);
}

// Stores `body` on `subject` with the given headers straight through
// nats.c, as another client (or a forged letter) would.
void publish_raw_letter(const catga::test::RawNats& raw, const std::string& subject, const std::string& body,
                        std::initializer_list<std::pair<const char*, std::string>> headers) {
  natsMsg* msg = nullptr;
  catga::test::check(natsMsg_Create(&msg, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size())),
                     "create");
  for (const auto& [name, value] : headers) natsMsgHeader_Set(msg, name, value.c_str());
  jsPubAck* ack = nullptr;
  const natsStatus s = js_PublishMsg(&ack, raw.js(), msg, nullptr, nullptr);
  jsPubAck_Destroy(ack);
  natsMsg_Destroy(msg);
  catga::test::check(s, "publish dead letter");
}

// A dead letter as another client would store it (docs/wire-format.md).
void publish_dead_letter(const catga::test::NatsServer& server, const std::string& type, const std::string& body) {
  catga::test::RawNats raw(server.url());
  static int n = 0;
  ++n;
  publish_raw_letter(raw, "catga.dlq." + type, body,
                     {{"Nats-Msg-Id", "CATGA_EVENTS:" + std::to_string(900 + n) + ":refunds_" + type},
                      {"Catga-Type", type},
                      {"Catga-Original-Msg-Id", "orig-" + std::to_string(n)},
                      {"Catga-Error", "body is not valid JSON"},
                      {"Catga-Error-Code", "malformed"},
                      {"Catga-Deliveries", "1"},
                      {"Catga-Original-Subject", "catga.evt." + type},
                      {"Catga-Original-Seq", "77"},
                      {"Catga-Group", "refunds"}});
}

const nlohmann::json* find_by(const nlohmann::json& array, const std::string& key, const std::string& value) {
  for (const auto& e : array) {
    if (e.contains(key) && e[key] == value) return &e;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("catga dlq/streams/consumers: list, show, replay once, purge; tables and JSON") {
  catga::test::NatsServer server;
  catga::nats::NatsOptions no;
  no.servers = {server.url()};
  catga::nats::JetStreamOptions js;
  js.events.storage = catga::nats::StorageType::memory;
  js.dead_letters.storage = catga::nats::StorageType::memory;
  js.consumer.fetch_expires = 1s;
  auto transport = catga::nats::JetStreamTransport::create(no, js).value();
  catga::Mediator mediator;
  mediator.attach(*transport);

  // billing: declines every invoice until "fixed"; 2 deliveries, then dead letter.
  std::atomic<bool> fixed{false};
  std::atomic<int> billed{0};
  std::mutex mu;
  std::string original_id;
  std::string replayed_header, replayed_original, replayed_id;
  catga::SubscribeOptions billing_opts;
  billing_opts.group = "billing";
  billing_opts.retry.max_deliver = 2;
  billing_opts.retry.backoff = {10ms};
  auto billing = mediator.subscribe<InvoiceDue>(billing_opts, [&](const InvoiceDue&, catga::Context& ctx) -> catga::Status {
    std::lock_guard lock(mu);
    if (original_id.empty()) original_id = ctx.message_id.text().str();
    if (!fixed.load()) return catga::make_error("declined", "card declined", true);
    replayed_header = std::string(ctx.headers.get("Catga-Replayed").value_or(""));
    replayed_original = std::string(ctx.headers.get("Catga-Original-Msg-Id").value_or(""));
    replayed_id = ctx.message_id.text().str();
    ++billed;
    return {};
  });
  REQUIRE(billing);

  // audit: fails the first delivery, then holds the redelivery until released,
  // so the group has one redelivered message awaiting its ack.
  std::atomic<bool> release{false};
  std::atomic<int> audit_attempts{0};
  catga::SubscribeOptions audit_opts;
  audit_opts.group = "audit";
  audit_opts.retry.backoff = {10ms};
  auto audit = mediator.subscribe<InvoiceDue>(audit_opts, [&](const InvoiceDue&, catga::Context& ctx) -> catga::Status {
    ++audit_attempts;
    if (ctx.attempt == 1) return catga::make_error("busy", "try again", true);
    wait_for([&] { return release.load(); }, 60s);
    return {};
  });
  REQUIRE(audit);

  // reports: a group whose members are all gone, with 3 events waiting.
  {
    catga::SubscribeOptions o;
    o.group = "reports";
    auto s = mediator.subscribe<ReportRequested>(o, [](const ReportRequested&) {});
    REQUIRE(s);
  }
  for (int i = 0; i < 3; ++i) REQUIRE(mediator.publish(ReportRequested{i}));

  REQUIRE(mediator.publish(InvoiceDue{"inv-1", 10}));
  publish_dead_letter(server, "Refund", "not json \xff\xfe");
  REQUIRE(wait_for([&] { return transport->health().dead_letters == 2; }, 60s));
  REQUIRE(wait_for([&] {
    for (const auto& c : transport->health().consumers) {
      if (c.group == "audit" && c.num_redelivered == 1 && c.num_ack_pending == 1) return true;
    }
    return false;
  }, 60s));

  // --- dlq list ---------------------------------------------------------------
  auto list = cli(server, {"dlq", "list"});
  REQUIRE(list.exit_code == 0);
  INFO("list: " << list.out);
  CHECK(list.out.find("SEQ") != std::string::npos);
  CHECK(list.out.find("InvoiceDue") != std::string::npos);
  CHECK(list.out.find("billing") != std::string::npos);
  CHECK(list.out.find("card declined") != std::string::npos);
  CHECK(list.out.find("Refund") != std::string::npos);

  auto letters = cli_json(server, {"dlq", "list"});
  REQUIRE(letters.size() == 2);
  const auto* inv = find_by(letters, "type", "InvoiceDue");
  const auto* refund = find_by(letters, "type", "Refund");
  REQUIRE(inv != nullptr);
  REQUIRE(refund != nullptr);
  CHECK((*inv)["group"] == "billing");
  CHECK((*inv)["deliveries"] == 2);
  CHECK((*inv)["error_code"] == "declined");
  CHECK((*inv)["error"] == "card declined");
  CHECK((*inv)["original_subject"] == "catga.evt.InvoiceDue");
  CHECK((*inv)["original_msg_id"] == original_id);
  CHECK((*refund)["error_code"] == "malformed");
  const auto inv_seq = (*inv)["seq"].get<std::uint64_t>();
  const auto refund_seq = (*refund)["seq"].get<std::uint64_t>();
  CHECK(cli_json(server, {"dlq", "list", "--type", "Refund"}).size() == 1);

  // --- dlq show -------------------------------------------------------------
  auto show = cli(server, {"dlq", "show", std::to_string(inv_seq)});
  REQUIRE(show.exit_code == 0);
  CHECK(show.out.find("Catga-Error: card declined") != std::string::npos);
  CHECK(show.out.find("\"invoice\":\"inv-1\"") != std::string::npos);
  auto shown = cli_json(server, {"dlq", "show", std::to_string(inv_seq)});
  CHECK(shown["body"]["invoice"] == "inv-1");
  CHECK(shown["headers"]["Catga-Type"] == "InvoiceDue");
  auto shown_raw = cli_json(server, {"dlq", "show", std::to_string(refund_seq)});
  CHECK(shown_raw["body"].is_null());
  CHECK(shown_raw["body_text"].get<std::string>().rfind("not json", 0) == 0);
  auto missing = cli(server, {"dlq", "show", "999"});
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.find("no dead letter #999") != std::string::npos);

  // --- consumers and streams --------------------------------------------------
  auto consumers = cli(server, {"consumers"});
  REQUIRE(consumers.exit_code == 0);
  CHECK(consumers.out.find("REDELIVERED") != std::string::npos);
  CHECK(consumers.out.find("audit") != std::string::npos);
  auto groups = cli_json(server, {"consumers"});
  const auto* a = find_by(groups, "group", "audit");
  const auto* r = find_by(groups, "group", "reports");
  REQUIRE(a != nullptr);
  REQUIRE(r != nullptr);
  CHECK((*a)["type"] == "InvoiceDue");
  CHECK((*a)["redelivered"] == 1);
  CHECK((*a)["ack_pending"] == 1);
  CHECK((*r)["type"] == "ReportRequested");
  CHECK((*r)["pending"] == 3);
  CHECK(find_by(groups, "group", "billing") != nullptr);
  release = true;

  auto streams = cli(server, {"streams"});
  REQUIRE(streams.exit_code == 0);
  CHECK(streams.out.find("CATGA_EVENTS") != std::string::npos);
  CHECK(streams.out.find("CATGA_DLQ") != std::string::npos);
  auto stream_list = cli_json(server, {"streams"});
  const auto* dlq = find_by(stream_list, "name", "CATGA_DLQ");
  const auto* events = find_by(stream_list, "name", "CATGA_EVENTS");
  REQUIRE(dlq != nullptr);
  REQUIRE(events != nullptr);
  CHECK((*dlq)["messages"] == 2);
  CHECK((*events)["messages"] == 4);
  CHECK((*events)["consumers"] == 3);

  // --- dlq replay: the fixed handler gets it exactly once ---------------------
  fixed = true;
  auto replay = cli(server, {"dlq", "replay", std::to_string(inv_seq)});
  REQUIRE(replay.exit_code == 0);
  CHECK(replay.out.find("replayed") != std::string::npos);
  REQUIRE(wait_for([&] { return billed.load() == 1; }, 60s));
  REQUIRE(wait_for([&] {
    for (const auto& c : transport->health().consumers) {
      if (!c.reachable || c.lag() != 0) return false;
    }
    return true;
  }, 60s));
  CHECK(billed.load() == 1);
  {
    std::lock_guard lock(mu);
    CHECK(replayed_header == std::to_string(inv_seq));
    CHECK(replayed_original == original_id);
    // The copy travels as "<original>.r<seq>", but handlers (and idempotency
    // keys) see the original id.
    CHECK(replayed_id == original_id);
  }
  // Replayed dead letters leave the stream; a second replay finds nothing.
  CHECK(cli_json(server, {"dlq", "list"}).size() == 1);
  auto again = cli(server, {"dlq", "replay", std::to_string(inv_seq)});
  CHECK(again.exit_code == 1);
  CHECK(again.err.find("no dead letter #" + std::to_string(inv_seq)) != std::string::npos);

  // --keep, twice: the second copy is recognised as a duplicate and not stored.
  auto kept = cli_json(server, {"dlq", "replay", "--keep", std::to_string(refund_seq)});
  REQUIRE(kept.size() == 1);
  CHECK(kept[0]["ok"] == true);
  CHECK(kept[0]["duplicate"] == false);
  CHECK(kept[0]["removed"] == false);
  CHECK(kept[0]["subject"] == "catga.evt.Refund");
  CHECK(kept[0]["msg_id"] == "orig-1.r" + std::to_string(refund_seq));
  auto all = cli_json(server, {"dlq", "replay", "--all"});
  REQUIRE(all.size() == 1);
  CHECK(all[0]["duplicate"] == true);
  CHECK(all[0]["removed"] == true);
  auto empty = cli(server, {"dlq", "list"});
  CHECK(empty.exit_code == 0);
  CHECK(empty.out.find("no dead letters") != std::string::npos);

  // --- dlq purge --------------------------------------------------------------
  publish_dead_letter(server, "Refund", "{}");
  publish_dead_letter(server, "Chargeback", "{}");
  auto refused = cli(server, {"dlq", "purge"});
  CHECK(refused.exit_code == 1);
  CHECK(refused.err.find("--yes") != std::string::npos);
  auto purged_one = cli_json(server, {"dlq", "purge", "--type", "Refund", "--yes"});
  CHECK(purged_one["purged"] == 1);
  auto purged = cli(server, {"dlq", "purge", "--yes"});
  CHECK(purged.exit_code == 0);
  CHECK(purged.out.find("purged 1 dead letter") != std::string::npos);
  CHECK(cli_json(server, {"dlq", "list"}).empty());
  CHECK(transport->stop(10s));
}

TEST_CASE("catga: an unreachable server or a missing stream is a clear error") {
  const int port = catga::test::free_loopback_port();
  auto r = run_cli(CATGA_CLI, {"--server", "nats://127.0.0.1:" + std::to_string(port), "streams"});
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  CHECK(r.err.find("connect to nats://127.0.0.1:" + std::to_string(port)) != std::string::npos);

  catga::test::NatsServer server;  // nothing provisioned yet
  auto list = run_cli(CATGA_CLI, {"--server", server.url(), "dlq", "list"});
  CHECK(list.exit_code == 1);
  CHECK(list.err.find("stream 'CATGA_DLQ' does not exist") != std::string::npos);
  auto streams = run_cli(CATGA_CLI, {"--server", server.url(), "streams"});
  CHECK(streams.exit_code == 0);
  CHECK(streams.out.find("no streams") != std::string::npos);
  auto usage = run_cli(CATGA_CLI, {"--server", server.url(), "dlq", "frobnicate"});
  CHECK(usage.exit_code == 2);
  auto twice = run_cli(CATGA_CLI, {"--server", server.url(), "--server", server.url(), "streams"});
  CHECK(twice.exit_code == 2);
}

TEST_CASE("catga dlq replay refuses a commit dead-lettered by an event-store projection") {
  catga::test::NatsServer server;
  catga::nats::NatsOptions no;
  no.servers = {server.url()};
  auto transport = catga::nats::JetStreamTransport::create(no).value();  // provisions CATGA_DLQ
  {
    catga::test::RawNats raw(server.url());
    publish_raw_letter(raw, "catga.dlq.es.Account", "{\"stream\":\"Account.B-2\",\"events\":[{",
                       {{"Nats-Msg-Id", "CATGA_ES:2:es_proj_orders"},
                        {"Catga-Error-Code", "malformed"},
                        {"Catga-Original-Subject", "catga.es.Account.B-2"},
                        {"Catga-Original-Seq", "2"},
                        {"Catga-Es-Consumer", "es_proj_orders"}});
  }
  auto listed = cli_json(server, {"dlq", "list"});
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["type"] == "es.Account");
  auto r = cli(server, {"dlq", "replay", "1"});
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("event-store commit") != std::string::npos);
  CHECK(cli_json(server, {"dlq", "list"}).size() == 1);  // kept
}

TEST_CASE("catga dlq replay refuses a dead letter whose original subject is not an event subject of the prefix") {
  catga::test::NatsServer server;
  catga::nats::NatsOptions no;
  no.servers = {server.url()};
  auto transport = catga::nats::JetStreamTransport::create(no).value();
  catga::test::RawNats raw(server.url());
  // Something listening where a forged letter points: it must never be called.
  natsSubscription* trap = nullptr;
  catga::test::check(natsConnection_SubscribeSync(&trap, raw.nc(), "$JS.API.STREAM.DELETE.>"), "subscribe");
  for (const char* target : {"$JS.API.STREAM.DELETE.CATGA_EVENTS", "_INBOX.abc", "other.evt.X", "catga.evt."}) {
    publish_raw_letter(raw, "catga.dlq.X", "{}",
                       {{"Nats-Msg-Id", std::string("forged-") + target},
                        {"Catga-Original-Subject", target},
                        {"Catga-Error-Code", "malformed"}});
  }
  for (const char* seq : {"1", "2", "3", "4"}) {
    auto r = cli(server, {"dlq", "replay", seq});
    CAPTURE(seq);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("not an event subject") != std::string::npos);
  }
  natsMsg* called = nullptr;
  CHECK(natsSubscription_NextMsg(&called, trap, 300) == NATS_TIMEOUT);
  natsSubscription_Destroy(trap);
  CHECK(cli_json(server, {"dlq", "list"}).size() == 4);  // kept
}

// Before: std::stoull showed "-1" as 18446744073709551615 and "12abc" as 12.
TEST_CASE("catga dlq list shows a numeric annotation that is not a plain number as the text it is") {
  catga::test::NatsServer server;
  catga::nats::NatsOptions no;
  no.servers = {server.url()};
  auto transport = catga::nats::JetStreamTransport::create(no).value();
  catga::test::RawNats raw(server.url());
  const std::vector<std::pair<std::string, std::string>> annotations = {
      {"-1", "12abc"}, {"18446744073709551616", "0x10"}, {"3", "42"}};
  for (std::size_t i = 0; i < annotations.size(); ++i) {
    publish_raw_letter(raw, "catga.dlq.X", "{}",
                       {{"Nats-Msg-Id", "odd-" + std::to_string(i)},
                        {"Catga-Deliveries", annotations[i].first},
                        {"Catga-Original-Seq", annotations[i].second}});
  }
  auto listed = cli_json(server, {"dlq", "list"});
  REQUIRE(listed.size() == 3);
  CHECK(listed[0]["deliveries"] == "-1");
  CHECK(listed[0]["original_seq"] == "12abc");
  CHECK(listed[1]["deliveries"] == "18446744073709551616");
  CHECK(listed[1]["original_seq"] == "0x10");
  CHECK(listed[2]["deliveries"] == 3);
  CHECK(listed[2]["original_seq"] == 42);
}

TEST_CASE("catga outbox dead lists what a service's outbox kept after the broker refused it") {
  catga::test::NatsServer server;  // only for its temporary directory
  const std::string db = (server.directory() / "outbox.db").string();
  {
    auto store = catga::outbox::OutboxStore::open({.path = db}).value();
    const auto& info = catga::message_info<InvoiceDue>();
    auto ctx = catga::Context::root();
    ctx.message_id = *catga::MessageId::parse("inv-1");
    ctx.message_type = info.name;
    const std::string body = R"({"invoice":"I-1","amount":5})";
    const auto seq = store->append(catga::OutboundMessage{info, body, ctx}).value();
    REQUIRE(store->bury(seq, catga::make_error(catga::errc::validation, "Maximum Payload Exceeded")));
    CHECK(store->size() == 0);
  }
  auto listed = cli_json(server, {"outbox", "dead", "--db", db});
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["msg_id"] == "inv-1");
  CHECK(listed[0]["type"] == "InvoiceDue");
  CHECK(listed[0]["error_code"] == "validation");
  CHECK(listed[0]["body"] == R"({"invoice":"I-1","amount":5})");
  auto table = cli(server, {"outbox", "dead", "--db", db});
  CHECK(table.exit_code == 0);
  CHECK(table.out.find("Maximum Payload Exceeded") != std::string::npos);
  auto missing = cli(server, {"outbox", "dead", "--db", db + ".nope"});
  CHECK(missing.exit_code != 0);
  CHECK_FALSE(std::filesystem::exists(db + ".nope"));  // not created by looking
}
