// The public operator API of catga::nats (dead letters, streams, consumers,
// ack subjects), used by the CLI and by applications: through installed
// headers only.
#include <doctest/doctest.h>

#include <atomic>
#include <string>

#include "catga/nats/ack_reply.hpp"
#include "catga/nats/dead_letters.hpp"
#include "catga/nats/streams.hpp"
#include "nats_server.hpp"
#include "test_messages.hpp"
#include "wait_for.hpp"

using catga::test::wait_for;
using namespace std::chrono_literals;

TEST_CASE("DeadLetterQueue lists, shows, replays, removes and purges; streams and consumers are listed") {
  catga::test::NatsServer server;
  auto transport = nt::make_transport(server);
  catga::Mediator mediator;
  mediator.attach(*transport);
  std::atomic<bool> fixed{false};
  std::atomic<int> handled{0};
  auto sub = mediator.subscribe<nt::OrderPlaced>(nt::group("billing"), [&](const nt::OrderPlaced&) -> catga::Status {
    if (!fixed.load()) return catga::make_error("declined", "card declined", false);
    ++handled;
    return {};
  });
  REQUIRE(sub);
  REQUIRE(mediator.publish(nt::OrderPlaced{"o-1", 1}));
  REQUIRE(mediator.publish(nt::OrderPlaced{"o-2", 2}));

  catga::nats::DeadLetterQueue dlq(transport->connection(), nt::js_options());
  CHECK(dlq.stream() == "CATGA_DLQ");
  CHECK(dlq.events_stream() == "CATGA_EVENTS");
  REQUIRE(wait_for([&] {
    auto all = dlq.list();
    return all && all->size() == 2;
  }));
  auto letters = dlq.list("OrderPlaced").value();
  REQUIRE(letters.size() == 2);
  const auto& first = letters[0];
  CHECK(first.type == "OrderPlaced");
  CHECK(first.subject == "catga.dlq.OrderPlaced");
  CHECK(first.header_or("Catga-Error-Code") == "declined");
  CHECK(first.header_or("Catga-Group") == "billing");
  CHECK(first.header_or("Catga-Original-Subject") == "catga.evt.OrderPlaced");
  CHECK(first.body == R"({"amount":1,"order_id":"o-1"})");
  CHECK(first.time_ns > 0);
  CHECK(dlq.list("Refund").value().empty());
  CHECK(dlq.list({}, 1).value().size() == 1);

  auto shown = dlq.get(first.sequence).value();
  REQUIRE(shown);
  CHECK(shown->body == first.body);
  CHECK_FALSE(dlq.get(999).value());

  // Streams and consumers as the CLI lists them.
  auto streams = catga::nats::list_streams(*transport->connection()).value();
  bool events = false, dead = false;
  for (const auto& s : streams) {
    if (s.name == "CATGA_EVENTS") events = s.messages == 2 && s.subjects == std::vector<std::string>{"catga.evt.>"};
    if (s.name == "CATGA_DLQ") dead = s.messages == 2 && s.storage == catga::nats::StorageType::memory;
  }
  CHECK(events);
  CHECK(dead);
  auto consumers = catga::nats::list_consumers(*transport->connection(), "CATGA_EVENTS").value();
  REQUIRE(consumers.size() == 1);
  CHECK(consumers[0].description == "catga group 'billing' for OrderPlaced");
  CHECK(consumers[0].stream == "CATGA_EVENTS");
  auto missing = catga::nats::list_consumers(*transport->connection(), "NO_SUCH_STREAM");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == catga::errc::unavailable);

  // Replay: back to the original subject under a new message id, then gone
  // from the dead letters; the handler sees it again.
  fixed = true;
  auto replayed = dlq.replay(first).value();
  CHECK(replayed.subject == "catga.evt.OrderPlaced");
  CHECK(replayed.message_id == catga::nats::replay_message_id(replayed.original_id, first.sequence));
  CHECK(replayed.stream_seq == 3);
  CHECK_FALSE(replayed.duplicate);
  CHECK(replayed.removed);
  REQUIRE(wait_for([&] { return handled.load() == 1; }));
  CHECK_FALSE(dlq.get(first.sequence).value());
  CHECK_FALSE(dlq.remove(first.sequence).value());  // already gone

  // A dead letter naming a subject outside the events cannot be replayed.
  auto forged = letters[1];
  forged.headers.emplace(forged.headers.begin(), "Catga-Original-Subject", "$JS.API.STREAM.DELETE.CATGA_EVENTS");
  auto refused = dlq.replay(forged);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == catga::errc::validation);

  CHECK(dlq.purge("OrderPlaced").value() == 1);
  CHECK(dlq.list().value().empty());

  // A deployment whose streams do not exist: a clear `unavailable` error.
  auto other = nt::js_options("nobody");
  catga::nats::DeadLetterQueue none(transport->connection(), other);
  auto nothing = none.list();
  REQUIRE_FALSE(nothing);
  CHECK(nothing.error().code == catga::errc::unavailable);
  CHECK(nothing.error().message.find("stream 'NOBODY_DLQ' does not exist") != std::string::npos);
}

TEST_CASE("parse_ack_reply reads the stream sequence and delivery count of an ack subject") {
  auto v1 = catga::nats::parse_ack_reply("$JS.ACK.CATGA_EVENTS.billing_OrderPlaced.2.17.5.1700000000000000000.3");
  REQUIRE(v1);
  CHECK(v1->stream == "CATGA_EVENTS");
  CHECK(v1->consumer == "billing_OrderPlaced");
  CHECK(v1->delivered == 2);
  CHECK(v1->stream_seq == 17);
  CHECK(v1->consumer_seq == 5);
  CHECK(v1->pending == 3);
  auto v2 = catga::nats::parse_ack_reply("$JS.ACK.hub.ACCHASH.S.c.1.9.9.1700000000000000000.0.tok");
  REQUIRE(v2);
  CHECK(v2->domain == "hub");
  CHECK(v2->stream_seq == 9);
  CHECK_FALSE(catga::nats::parse_ack_reply("_INBOX.abc"));
  CHECK(catga::nats::parse_status_code("408 Request Timeout") == 408);
  CHECK(catga::nats::parse_status_code("") == 0);
}
