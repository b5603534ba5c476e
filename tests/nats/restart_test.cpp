// The broker goes away in the middle of a run and comes back on the same
// store: nothing is lost, exactly-once effects are applied once.
#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "catga/nats/kv_idempotency_store.hpp"
#include "catga/pipeline/idempotency.hpp"
#include "nats_server.hpp"
#include "raw_nats.hpp"
#include "stream_reader.hpp"
#include "test_messages.hpp"
#include "wait_for.hpp"

using namespace std::chrono_literals;

namespace {

catga::nats::JetStreamOptions durable_options() {
  auto js = nt::js_options();
  js.events.storage = catga::nats::StorageType::file;
  js.dead_letters.storage = catga::nats::StorageType::file;
  js.consumer.ack_wait = 5s;  // unacked work comes back within seconds after the restart
  js.publish_timeout = 10s;
  return js;
}

struct Effects {
  std::mutex mu;
  std::map<std::string, int> applied;
  void apply(const std::string& id) {
    std::lock_guard lock(mu);
    ++applied[id];
  }
  std::size_t distinct() {
    std::lock_guard lock(mu);
    return applied.size();
  }
  int max_count() {
    std::lock_guard lock(mu);
    int m = 0;
    for (auto& [k, v] : applied) m = std::max(m, v);
    return m;
  }
};

// One consumer instance: connection, KV idempotency store, transport, mediator.
struct Consumer {
  Consumer(const catga::test::NatsServer& server, const std::string& name, Effects& effects,
           std::atomic<int>& lost_acks) {
    conn = catga::nats::Connection::connect(nt::nats_options(server, name)).value();
    catga::nats::KvIdempotencyOptions kv;
    kv.bucket = "ledger_idem";
    store = catga::nats::KvIdempotencyStore::create(conn, kv).value();
    transport = catga::nats::JetStreamTransport::create(conn, durable_options()).value();
    mediator.attach(*transport);
    // Every 97th message loses its first ack after its effect was applied:
    // a duplicate delivery that must not be applied again.
    mediator.use(catga::make_behavior([&lost_acks](catga::Invocation& inv, catga::Next next) -> catga::Status {
      catga::Status s = next();
      const auto& e = inv.message_as<nt::PaymentTaken>();
      if (s && inv.context.attempt == 1 && std::stoi(e.order_id.substr(4)) % 97 == 0) {
        lost_acks++;
        return catga::make_error("ack_lost", "simulated", true);
      }
      return s;
    }));
    auto idem = catga::nats::exactly_once_idempotency(store);
    idem.lease = 3s;  // a claim orphaned by the outage is taken over quickly
    idem.wait_timeout = 5s;
    mediator.use(std::make_shared<catga::IdempotencyBehavior>(idem));
    auto opts = nt::group("ledger", 4);
    opts.retry.max_deliver = 1000;  // the outage must not dead-letter anything
    opts.retry.backoff = {50ms, 200ms, 500ms};
    sub = mediator.subscribe<nt::PaymentTaken>(opts, [&effects](const nt::PaymentTaken& e) { effects.apply(e.order_id); })
              .value();
  }
  std::shared_ptr<catga::nats::Connection> conn;
  std::shared_ptr<catga::nats::KvIdempotencyStore> store;
  std::unique_ptr<catga::nats::JetStreamTransport> transport;
  catga::Mediator mediator;
  catga::Subscription sub;
};

}  // namespace

TEST_CASE("server restarted on the same store mid-run of 10,000 events: nothing lost, nothing applied twice") {
  catga::test::NatsServer server;
  Effects effects;
  std::atomic<int> lost_acks{0};
  Consumer c1(server, "c1", effects, lost_acks);
  Consumer c2(server, "c2", effects, lost_acks);
  auto publisher = nt::make_transport(server, durable_options(), "publisher");
  catga::Mediator pub;
  pub.attach(*publisher);

  constexpr int kEvents = 10'000;
  std::atomic<int> published{0};
  std::atomic<int> retried{0};
  std::atomic<bool> failed{false};
  std::thread producer([&] {
    for (int i = 0; i < kEvents && !failed; ++i) {
      auto ctx = catga::Context::root();
      ctx.message_id = *catga::MessageId::parse("pay-" + std::to_string(i));
      while (true) {
        auto s = pub.publish(nt::PaymentTaken{"pay-" + std::to_string(i)}, ctx);
        if (s) break;
        if (!s.error().retryable) {
          failed = true;
          break;
        }
        retried++;  // same id again: the stream keeps one copy
      }
      published++;
    }
  });

  REQUIRE(catga::test::wait_for([&] { return published.load() >= 3000 || failed; }, 60s));
  server.restart();
  producer.join();
  REQUIRE_FALSE(failed.load());
  REQUIRE(published.load() == kEvents);

  REQUIRE(catga::test::wait_for([&] { return effects.distinct() == kEvents; }, 120s));
  REQUIRE(catga::test::wait_for(
      [&] {
        auto h = c1.transport->health();
        return h.consumers.size() == 1 && h.consumers[0].reachable && h.consumers[0].lag() == 0;
      },
      60s));
  CHECK(effects.max_count() == 1);
  CHECK(lost_acks.load() >= kEvents / 97);
  catga::test::RawNats raw(server.url());
  CHECK(nt::stream_count(raw, "CATGA_EVENTS") == kEvents);  // retried publishes were deduplicated
  CHECK(nt::stream_count(raw, "CATGA_DLQ") == 0);
  MESSAGE("publish retries during the outage: " << retried.load() << ", reconnects: " << c1.conn->reconnects());
  CHECK(c1.conn->reconnects() >= 1);
}
