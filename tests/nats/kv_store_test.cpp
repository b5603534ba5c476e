// KvIdempotencyStore against a real JetStream KV bucket, and exactly-once
// consumption through IdempotencyBehavior.
#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "catga/nats/kv_idempotency_store.hpp"
#include "catga/pipeline/idempotency.hpp"
#include "nats_server.hpp"
#include "test_messages.hpp"
#include "wait_for.hpp"

using catga::IdempotencyClaim;
using catga::nats::KvIdempotencyStore;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<catga::nats::Connection> connect(const catga::test::NatsServer& server, std::string name = "kv") {
  return catga::nats::Connection::connect(nt::nats_options(server, std::move(name))).value();
}

std::shared_ptr<KvIdempotencyStore> store_on(std::shared_ptr<catga::nats::Connection> conn,
                                             catga::nats::StorageType storage = catga::nats::StorageType::memory) {
  catga::nats::KvIdempotencyOptions o;
  o.bucket = "idem";
  o.storage = storage;
  o.poll_interval = 10ms;
  return KvIdempotencyStore::create(std::move(conn), o).value();
}

catga::IdempotencyOutcome ok_value(int v) {
  catga::IdempotencyOutcome o;
  o.value = v;
  return o;
}

}  // namespace

TEST_CASE("claim, complete and release follow the IdempotencyStore contract across connections") {
  catga::test::NatsServer server;
  auto a = store_on(connect(server, "a"));
  auto b = store_on(connect(server, "b"));

  auto first = a->claim("billing:order-1", 1min);
  REQUIRE(first);
  CHECK(first->state == IdempotencyClaim::State::claimed);
  auto second = b->claim("billing:order-1", 1min);
  REQUIRE(second);
  CHECK(second->state == IdempotencyClaim::State::in_progress);

  CHECK(b->complete("billing:order-1", first->token + 1000, ok_value(1), 1h).error().code == "conflict");
  REQUIRE(a->complete("billing:order-1", first->token, ok_value(42), 1h));
  auto done = b->claim("billing:order-1", 1min);
  REQUIRE(done);
  REQUIRE(done->state == IdempotencyClaim::State::completed);
  REQUIRE(done->outcome);
  CHECK(done->outcome->ok());
  CHECK(done->outcome->value == 42);

  // Release frees the key for the next attempt; a stale release is a no-op.
  auto c1 = a->claim("billing:order-2", 1min);
  REQUIRE(c1);
  REQUIRE(c1->state == IdempotencyClaim::State::claimed);
  REQUIRE(a->release("billing:order-2", c1->token));
  auto c2 = b->claim("billing:order-2", 1min);
  REQUIRE(c2);
  REQUIRE(c2->state == IdempotencyClaim::State::claimed);
  CHECK(c2->token != c1->token);
  REQUIRE(a->release("billing:order-2", c1->token));  // stale: keeps b's claim
  auto c3 = a->claim("billing:order-2", 1min);
  REQUIRE(c3);
  CHECK(c3->state == IdempotencyClaim::State::in_progress);

  // Failures are stored as outcomes too.
  auto f = a->claim("billing:order-3", 1min);
  REQUIRE(f);
  catga::IdempotencyOutcome failed;
  failed.error = catga::make_error("rejected", "no stock");
  REQUIRE(a->complete("billing:order-3", f->token, failed, 1h));
  auto ff = b->claim("billing:order-3", 1min);
  REQUIRE(ff);
  REQUIRE(ff->state == IdempotencyClaim::State::completed);
  CHECK_FALSE(ff->outcome->ok());
  CHECK(ff->outcome->error->code == "rejected");
}

TEST_CASE("an expired claim is taken over; the old owner can no longer complete it") {
  catga::test::NatsServer server;
  auto a = store_on(connect(server, "a"));
  auto b = store_on(connect(server, "b"));
  auto mine = a->claim("k", 200ms);
  REQUIRE(mine);
  REQUIRE(mine->state == IdempotencyClaim::State::claimed);
  REQUIRE(catga::test::wait_for([&] {
    auto c = b->claim("k", 1min);
    return c && c->state == IdempotencyClaim::State::claimed;
  }));
  CHECK(a->complete("k", mine->token, ok_value(1), 1h).error().code == "conflict");
}

TEST_CASE("wait returns the outcome once the owner completes, or in_progress at the deadline") {
  catga::test::NatsServer server;
  auto a = store_on(connect(server, "a"));
  auto b = store_on(connect(server, "b"));
  auto mine = a->claim("w", 1min);
  REQUIRE(mine);
  auto timed_out = b->wait("w", 1min, std::chrono::steady_clock::now() + 100ms);
  REQUIRE(timed_out);
  CHECK(timed_out->state == IdempotencyClaim::State::in_progress);

  std::thread owner([&] {
    std::this_thread::sleep_for(100ms);  // the owner's work
    (void)a->complete("w", mine->token, ok_value(7), 1h);
  });
  auto waited = b->wait("w", 1min, std::chrono::steady_clock::now() + 20s);
  owner.join();
  REQUIRE(waited);
  REQUIRE(waited->state == IdempotencyClaim::State::completed);
  CHECK(waited->outcome->value == 7);
}

TEST_CASE("keys of any text are stored under escaped KV keys") {
  CHECK(KvIdempotencyStore::encode_key("billing:4f1c") == "billing=3A4f1c");
  CHECK(KvIdempotencyStore::encode_key("a.b c/=") == "a=2Eb=20c=2F=3D");
  CHECK(KvIdempotencyStore::encode_key("") == "=");
  CHECK(KvIdempotencyStore::encode_key("a=2E") != KvIdempotencyStore::encode_key("a."));
  catga::test::NatsServer server;
  auto a = store_on(connect(server));
  for (const std::string& key : std::vector<std::string>{"group with spaces:id", "ü:ñ", "a.b.c", ">*", std::string(300, 'x')}) {
    auto c = a->claim(key, 1min);
    REQUIRE(c);
    CHECK(c->state == IdempotencyClaim::State::claimed);
    REQUIRE(a->complete(key, c->token, ok_value(1), 1h));
  }
}

TEST_CASE("outcomes survive a server restart (file storage)") {
  catga::test::NatsServer server;
  {
    auto a = store_on(connect(server), catga::nats::StorageType::file);
    auto c = a->claim("durable", 1min);
    REQUIRE(c);
    REQUIRE(a->complete("durable", c->token, ok_value(5), 1h));
  }
  server.restart();
  auto b = store_on(connect(server), catga::nats::StorageType::file);
  auto again = b->claim("durable", 1min);
  REQUIRE(again);
  REQUIRE(again->state == IdempotencyClaim::State::completed);
  CHECK(again->outcome->value == 5);
}

TEST_CASE("a redelivered exactly-once event is not applied again; an at-least-once one is") {
  catga::test::NatsServer server;
  auto conn = connect(server, "svc");
  auto store = store_on(conn);
  auto transport = catga::nats::JetStreamTransport::create(conn, nt::js_options()).value();
  catga::Mediator m;
  m.attach(*transport);
  // Order: the ack-loser wraps the idempotency behavior, which wraps the handler.
  m.use(catga::make_behavior([](catga::Invocation& inv, catga::Next next) -> catga::Status {
    catga::Status s = next();
    if (s && inv.context.attempt == 1) return catga::make_error("ack_lost", "simulated lost ack", true);
    return s;
  }));
  m.use(std::make_shared<catga::IdempotencyBehavior>(catga::nats::exactly_once_idempotency(store)));

  std::atomic<int> payments_applied{0}, orders_applied{0};
  auto retry = nt::group("ledger");
  retry.retry.backoff = {10ms};
  auto s1 = m.subscribe<nt::PaymentTaken>(retry, [&](const nt::PaymentTaken&) { payments_applied++; });
  auto s2 = m.subscribe<nt::OrderPlaced>(retry, [&](const nt::OrderPlaced&) { orders_applied++; });
  REQUIRE(s1);
  REQUIRE(s2);
  REQUIRE(m.publish(nt::PaymentTaken{"p-1"}));
  REQUIRE(m.publish(nt::OrderPlaced{"o-1", 1}));
  REQUIRE(catga::test::wait_for([&] {
    auto h = transport->health();
    std::uint64_t handled = 0, lag = 0;
    for (auto& c : h.consumers) {
      handled += c.handled;
      lag += c.lag();
    }
    return handled == 2 && lag == 0;
  }));
  CHECK(payments_applied.load() == 1);  // delivered twice, applied once
  CHECK(orders_applied.load() == 2);    // at-least-once: no idempotency, applied twice
}

namespace {
struct Refund {
  std::string order_id;
};
CATGA_EVENT(Refund, order_id)
CATGA_QOS(Refund, catga::QoS::exactly_once)

struct Release {
  std::string order_id;
};
CATGA_COMMAND(Release, void, order_id)
}  // namespace

// Before: the key was the message id alone, in one bucket shared by every
// service, so a command reusing an earlier command's id was answered
// {"ok":true} without running (or failed: "stored result ... does not
// decode"), and an event type consumed under another type's id was skipped.
TEST_CASE("one KV bucket, one message id: another command type, another event type, another group each run") {
  catga::test::NatsServer server;
  auto conn = connect(server, "svc");
  auto store = store_on(conn);
  // The stream drops a reused Nats-Msg-Id within its duplicate window; past
  // it (here 100 ms instead of 2 min) the id reaches the consumers again.
  auto js = nt::js_options();
  js.events.duplicate_window = 100ms;
  auto transport = catga::nats::JetStreamTransport::create(conn, js).value();
  catga::Mediator svc;
  svc.attach(*transport);
  auto idem = catga::IdempotencyOptions{.store = store};
  svc.use(std::make_shared<catga::IdempotencyBehavior>(idem));
  std::atomic<int> adds{0}, releases{0};
  svc.handle<nt::Add>([&](const nt::Add& a) {
    adds++;
    return a.a + a.b;
  });
  svc.handle<Release>([&](const Release&) { releases++; });
  auto serve_add = svc.serve<nt::Add>("svc");
  auto serve_release = svc.serve<Release>("svc");
  REQUIRE(serve_add);
  REQUIRE(serve_release);

  auto client_transport = nt::make_transport(server, js, "client");
  catga::Mediator client;
  client.attach(*client_transport);
  client.route_remote<nt::Add>();
  client.route_remote<Release>();
  auto ctx = catga::Context::root();
  ctx.message_id = catga::MessageId::parse("reused-id-1").value();
  CHECK(client.send(Release{"o-1"}, ctx).ok());
  auto sum = client.send(nt::Add{40, 2}, ctx);  // same id, another type: runs
  REQUIRE(sum);
  CHECK(*sum == 42);
  CHECK(client.send(nt::Add{40, 2}, ctx).value() == 42);  // its own duplicate: replayed
  CHECK(client.send(Release{"o-1"}, ctx).ok());
  CHECK(adds.load() == 1);
  CHECK(releases.load() == 1);

  // Consumer groups on the same bucket: two exactly-once types under one id,
  // and a second group, each apply once.
  catga::Mediator consumers;
  consumers.attach(*transport);
  consumers.use(std::make_shared<catga::IdempotencyBehavior>(catga::nats::exactly_once_idempotency(store)));
  std::atomic<int> payments{0}, refunds{0}, audits{0};
  auto s1 = consumers.subscribe<nt::PaymentTaken>(nt::group("ledger"), [&](const nt::PaymentTaken&) { payments++; });
  auto s2 = consumers.subscribe<Refund>(nt::group("ledger"), [&](const Refund&) { refunds++; });
  auto s3 = consumers.subscribe<Refund>(nt::group("audit"), [&](const Refund&) { audits++; });
  REQUIRE(s1);
  REQUIRE(s2);
  REQUIRE(s3);
  auto ev = catga::Context::root();
  ev.message_id = catga::MessageId::parse("reused-id-2").value();
  REQUIRE(client.publish(nt::PaymentTaken{"o-1"}, ev));
  std::this_thread::sleep_for(300ms);
  REQUIRE(client.publish(Refund{"o-1"}, ev));
  const bool drained = catga::test::wait_for([&] {
    auto h = transport->health();
    std::uint64_t handled = 0, lag = 0;
    for (auto& c : h.consumers) {
      handled += c.handled;
      lag += c.lag();
    }
    return handled >= 3 && lag == 0;
  }, 10s);
  CAPTURE(transport->health().consumers.size());
  CHECK(drained);
  CHECK(payments.load() == 1);
  CHECK(refunds.load() == 1);
  CHECK(audits.load() == 1);
}
