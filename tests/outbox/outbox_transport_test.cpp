// OutboxTransport over a real JetStreamTransport: direct while the broker is
// there, stored locally while it is not, relayed in order when it is back.
#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <set>

#include "../nats/stream_reader.hpp"
#include "catga/mediator.hpp"
#include "catga/wire.hpp"
#include "catga/nats/jetstream_transport.hpp"
#include "catga/outbox/outbox_transport.hpp"
#include "catga/pipeline/metrics.hpp"
#include "nats_server.hpp"
#include "outbox_messages.hpp"
#include "raw_nats.hpp"
#include "wait_for.hpp"

using namespace std::chrono_literals;
using catga::outbox::PublishRoute;

namespace {

struct Pinged {
  int n = 0;
};
CATGA_EVENT(Pinged, n)
CATGA_QOS(Pinged, catga::QoS::at_most_once)

// A keyed event (CATGA_ORDERING_KEY): it travels on catga.evt.Ticked.<partition>.
struct Ticked {
  std::string key;
  int n = 0;
};
CATGA_EVENT(Ticked, key, n)
CATGA_ORDERING_KEY(Ticked, key)

catga::Result<PublishRoute> publish(catga::outbox::OutboxTransport& t, int i) {
  const auto& info = catga::message_info<ob::Deposited>();
  auto ctx = catga::Context::root();
  ctx.message_id = *catga::MessageId::parse(ob::deposit_id(i));
  ctx.message_type = info.name;
  const std::string body = nlohmann::json(ob::Deposited{ob::deposit_id(i), i}).dump();
  return t.publish_routed(catga::OutboundMessage{info, body, ctx});
}

// An outbox over a JetStream transport whose broker has just been killed
// (what is published now is stored locally); server.start() brings it back.
struct BrokerDown {
  catga::test::NatsServer server;
  std::shared_ptr<catga::nats::JetStreamTransport> inner;
  std::shared_ptr<catga::outbox::OutboxStore> store;
  std::unique_ptr<catga::outbox::OutboxTransport> outbox;

  BrokerDown() {
    catga::nats::NatsOptions nats;
    nats.servers = {server.url()};
    nats.max_reconnect_wait = 200ms;
    inner = std::shared_ptr<catga::nats::JetStreamTransport>(catga::nats::JetStreamTransport::create(nats).value());
    store = catga::outbox::OutboxStore::open({.path = (server.directory() / "outbox.db").string()}).value();
    outbox = catga::outbox::OutboxTransport::create(store, inner).value();
    server.kill();
    REQUIRE(catga::test::wait_for([&] { return !inner->connection()->connected(); }, 30s));
  }
};

}  // namespace

TEST_CASE("direct while the broker is up; stored locally while it is down; relayed in order when it is back") {
  catga::test::NatsServer server;
  catga::nats::NatsOptions nats;
  nats.servers = {server.url()};
  nats.max_reconnect_wait = 200ms;
  catga::nats::JetStreamOptions js;
  js.publish_timeout = 2s;
  auto inner = std::shared_ptr<catga::nats::JetStreamTransport>(catga::nats::JetStreamTransport::create(nats, js).value());
  auto store = catga::outbox::OutboxStore::open({.path = (server.directory() / "outbox.db").string()}).value();
  auto outbox = catga::outbox::OutboxTransport::create(store, inner).value();

  int next = 0;
  for (; next < 10; ++next) CHECK(publish(*outbox, next).value() == PublishRoute::sent);
  CHECK(outbox->pending() == 0);

  server.kill();
  REQUIRE(catga::test::wait_for([&] { return !inner->connection()->connected(); }, 30s));
  for (; next < 60; ++next) REQUIRE(publish(*outbox, next).value() == PublishRoute::stored_locally);
  CHECK(outbox->pending() == 50);
  CHECK(outbox->stored_locally() == 50);
  // at-most-once events are not kept: they fail (or drop) like on the inner transport.
  catga::Mediator m;
  m.attach(*outbox);
  (void)m.publish(Pinged{1});
  CHECK(outbox->pending() == 50);

  server.start();
  // While the outbox drains, new events queue behind the stored ones.
  int queued_behind = 0;
  while (outbox->pending() > 0 && next < 200) {
    if (publish(*outbox, next++).value() == PublishRoute::stored_locally) ++queued_behind;
  }
  REQUIRE(outbox->drain(60s));
  CHECK(outbox->relayed() >= 50);
  CHECK(publish(*outbox, next++).value() == PublishRoute::sent);
  MESSAGE("published behind the draining outbox: " << queued_behind);

  catga::test::RawNats raw(server.url());
  std::vector<nt::Stored> stored;
  for (auto& e : nt::read_stream(raw, "CATGA_EVENTS")) {
    // The at-most-once Pinged may be there too (nats.c buffered it while reconnecting).
    if (e.header("Catga-Type") == "Deposited") stored.push_back(std::move(e));
  }
  REQUIRE(stored.size() == static_cast<std::size_t>(next));
  for (int i = 0; i < next; ++i) {
    CHECK(stored[static_cast<std::size_t>(i)].header("Nats-Msg-Id") == ob::deposit_id(i));  // publish order
  }
  outbox->stop();
}

TEST_CASE("the broker down at start: events are stored, the connector is retried, then they are relayed") {
  catga::test::NatsServerOptions so;
  so.start = false;
  catga::test::NatsServer server(so);
  catga::nats::NatsOptions nats;
  nats.servers = {server.url()};
  catga::nats::JetStreamOptions js;
  js.startup_timeout = 500ms;
  std::atomic<int> attempts{0};
  auto store = catga::outbox::OutboxStore::open({.path = (server.directory() / "outbox.db").string()}).value();
  auto outbox = catga::outbox::OutboxTransport::create(
                    store,
                    [&]() -> catga::Result<std::shared_ptr<catga::Transport>> {
                      ++attempts;
                      auto t = catga::nats::JetStreamTransport::create(nats, js);
                      if (!t) return std::move(t).error();
                      return std::shared_ptr<catga::Transport>(std::move(*t));
                    })
                    .value();
  for (int i = 0; i < 5; ++i) CHECK(publish(*outbox, i).value() == PublishRoute::stored_locally);
  auto sub = outbox->subscribe("Deposited", {}, [](catga::Delivery&) { return catga::Status{}; });
  REQUIRE_FALSE(sub);
  CHECK(sub.error().code == "unavailable");
  REQUIRE(catga::test::wait_for([&] { return attempts.load() >= 2; }, 30s));  // failed at least once
  server.start();
  REQUIRE(outbox->drain(60s));
  catga::test::RawNats raw(server.url());
  CHECK(nt::stream_count(raw, "CATGA_EVENTS") == 5);
  outbox->stop();
}

TEST_CASE("an event the broker refuses for good moves to the outbox's dead letters; the ones after it are relayed") {
  BrokerDown down;
  auto& server = down.server;
  auto& store = down.store;
  auto& outbox = down.outbox;

  // Larger than the server's max payload (1 MiB): no broker will ever take it.
  const auto& info = catga::message_info<ob::Deposited>();
  auto ctx = catga::Context::root();
  ctx.message_id = *catga::MessageId::parse("huge-1");
  ctx.message_type = info.name;
  const std::string huge = nlohmann::json(ob::Deposited{std::string(2 << 20, 'x'), 1}).dump();
  REQUIRE(outbox->publish_routed(catga::OutboundMessage{info, huge, ctx}).value() == PublishRoute::stored_locally);
  REQUIRE(publish(*outbox, 1).value() == PublishRoute::stored_locally);

  server.start();
  REQUIRE(outbox->drain(60s));
  CHECK(outbox->dead_lettered() == 1);
  CHECK(outbox->relayed() == 1);
  auto dead = store->dead_letters().value();
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].record.message_id == "huge-1");
  CHECK(dead[0].record.body == huge);  // kept whole, never lost
  CHECK_FALSE(dead[0].error_code.empty());
  MESSAGE("refused with " << dead[0].error_code << ": " << dead[0].error);

  catga::test::RawNats raw(server.url());
  std::size_t deposited = 0;
  for (auto& e : nt::read_stream(raw, "CATGA_EVENTS")) deposited += e.header("Catga-Type") == "Deposited" ? 1 : 0;
  CHECK(deposited == 1);
  outbox->stop();
}

TEST_CASE("an event whose type cannot be a subject is refused, not stored for a relay that could never send it") {
  BrokerDown down;
  auto& outbox = down.outbox;

  auto ctx = catga::Context::root();
  for (std::string_view bad : {"Deposited*", "Deposited >", "a..b", "$JS.API.X"}) {
    INFO("type: ", std::string(bad));
    const catga::MessageInfo info{bad, catga::MessageKind::event, catga::QoS::at_least_once, 0, false,
                                  nullptr, nullptr, nullptr, nullptr};
    auto r = outbox->publish_routed(catga::OutboundMessage{info, "{}", ctx});
    REQUIRE_FALSE(r);
    CHECK(r.error().code == catga::errc::validation);
  }
  CHECK(outbox->pending() == 0);
  REQUIRE(publish(*outbox, 1).value() == PublishRoute::stored_locally);  // a normal one still is
  outbox->stop();
}

TEST_CASE("OutboxTransportOptions::metrics: depth while the broker is away, stored and relayed counts once it is back") {
  catga::test::NatsServerOptions so;
  so.start = false;
  catga::test::NatsServer server(so);
  catga::nats::NatsOptions nats;
  nats.servers = {server.url()};
  catga::nats::JetStreamOptions js;
  js.startup_timeout = 500ms;
  auto metrics = std::make_shared<catga::Metrics>();
  catga::outbox::OutboxTransportOptions options;
  options.metrics = metrics;
  auto store = catga::outbox::OutboxStore::open({.path = (server.directory() / "outbox.db").string()}).value();
  auto outbox = catga::outbox::OutboxTransport::create(
                    store,
                    [&]() -> catga::Result<std::shared_ptr<catga::Transport>> {
                      auto t = catga::nats::JetStreamTransport::create(nats, js);
                      if (!t) return std::move(t).error();
                      return std::shared_ptr<catga::Transport>(std::move(*t));
                    },
                    options)
                    .value();
  for (int i = 0; i < 4; ++i) CHECK(publish(*outbox, i).value() == PublishRoute::stored_locally);
  auto text = metrics->render_prometheus();
  CHECK(text.find("catga_outbox_pending_messages 4\n") != std::string::npos);
  CHECK(text.find("catga_outbox_stored_total 4\n") != std::string::npos);
  server.start();
  REQUIRE(outbox->drain(60s));
  REQUIRE(catga::test::wait_for([&] { return metrics->counter("catga_outbox_relayed_total", "").value() == 4; }));
  text = metrics->render_prometheus();
  CHECK(text.find("catga_outbox_pending_messages 0\n") != std::string::npos);
  CHECK(text.find("catga_outbox_dead_lettered_total 0\n") != std::string::npos);
  outbox->stop();
}

// Before: the relay published stored events as unkeyed, to catga.evt.Ticked,
// which no group of a keyed type reads (they filter the partition
// subjects); and subscribe_ordered through the outbox was refused.
TEST_CASE("keyed events stored while the broker is down are relayed to their partition; ordered groups work through the outbox") {
  catga::test::NatsServer server;
  catga::nats::NatsOptions nats;
  nats.servers = {server.url()};
  nats.max_reconnect_wait = 200ms;
  auto inner = std::shared_ptr<catga::nats::JetStreamTransport>(catga::nats::JetStreamTransport::create(nats).value());
  auto store = catga::outbox::OutboxStore::open({.path = (server.directory() / "outbox.db").string()}).value();
  auto outbox = catga::outbox::OutboxTransport::create(store, inner).value();
  catga::Mediator m;
  m.attach(*outbox);
  std::mutex mu;
  std::vector<int> seen;
  auto sub = m.subscribe_ordered<Ticked>({.group = "ticks"}, [&](const Ticked& t) {
    std::lock_guard lock(mu);
    seen.push_back(t.n);
  });
  REQUIRE_MESSAGE(sub, sub.error().message);
  REQUIRE(m.publish(Ticked{"T-1", 0}));  // direct

  server.kill();
  REQUIRE(catga::test::wait_for([&] { return !inner->connection()->connected(); }, 30s));
  for (int n = 1; n <= 3; ++n) REQUIRE(m.publish(Ticked{"T-1", n}));
  CHECK(outbox->stored_locally() == 3);
  server.start();
  REQUIRE(outbox->drain(60s));

  const std::string subject =
      "catga.evt.Ticked." + std::to_string(catga::wire::partition_of("T-1", catga::nats::JetStreamOptions{}.partitions));
  catga::test::RawNats raw(server.url());
  int ticks = 0;
  for (const auto& e : nt::read_stream(raw, "CATGA_EVENTS")) {
    if (e.header("Catga-Type") != "Ticked") continue;
    ++ticks;
    CHECK_MESSAGE(e.subject == subject, e.subject << " #" << e.sequence);
    CHECK(e.header("Catga-Ordering-Key") == "T-1");
  }
  CHECK(ticks == 4);
  // The ordered group, back on the restarted server, handles all four in
  // order. At least once: one handled but not yet acknowledged when the
  // broker went away runs again, but none runs before its predecessor ran.
  auto distinct = [&] {
    std::lock_guard lock(mu);
    return std::set<int>(seen.begin(), seen.end()).size();
  };
  REQUIRE(catga::test::wait_for([&] { return distinct() >= 4; }, 60s));
  std::lock_guard lock(mu);
  int next = 0;
  std::string order;
  for (int n : seen) {
    order += std::to_string(n) + " ";
    CHECK_MESSAGE(n <= next, "event " << n << " ran before event " << next << ": " << order);
    if (n == next) ++next;
  }
  CHECK(next == 4);
}
