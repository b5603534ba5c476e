// native::Request (catga/nats/native/request.hpp): requests and JetStream
// publishes answered on catga's own reply subscriptions, so nats.c's reader
// thread hands each reply straight to the waiting thread. What
// natsConnection_RequestMsg and js_PublishMsg promised still holds: acks,
// duplicates, refusals in the server's words, no responders, timeouts; and
// a late reply is never taken for a later try's answer.
#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "catga/nats/key_value.hpp"
#include "catga/nats/native/connection.hpp"
#include "catga/nats/native/error.hpp"
#include "catga/nats/native/request.hpp"
#include "catga/nats/streams.hpp"
#include "nats_server.hpp"
#include "raw_nats.hpp"
#include "test_messages.hpp"

using namespace std::chrono_literals;
namespace native = catga::nats::native;

namespace {

// native::Request uses its own reply subscriptions on send_asap connections.
std::shared_ptr<catga::nats::Connection> connect(const catga::test::NatsServer& server, std::string name,
                                                 bool send_asap = true) {
  auto o = nt::nats_options(server, std::move(name));
  o.send_asap = send_asap;
  return catga::nats::Connection::connect(o).value();
}

std::string body_of(natsMsg* m) {
  return std::string(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
}

// Answers requests on `subject` with their own body; the first answer comes
// after `first_delay`.
struct Echo {
  natsSubscription* sub = nullptr;
  std::chrono::milliseconds first_delay{0};
  std::atomic<int> seen{0};

  Echo(catga::test::RawNats& raw, const char* subject, std::chrono::milliseconds delay) : first_delay(delay) {
    catga::test::check(natsConnection_Subscribe(&sub, raw.nc(), subject, &Echo::on, this), "subscribe");
    catga::test::check(natsConnection_Flush(raw.nc()), "flush");
  }
  ~Echo() { natsSubscription_Destroy(sub); }
  static void on(natsConnection* nc, natsSubscription*, natsMsg* m, void* self) {
    auto* e = static_cast<Echo*>(self);
    if (e->seen++ == 0) std::this_thread::sleep_for(e->first_delay);
    natsConnection_Publish(nc, natsMsg_GetReply(m), natsMsg_GetData(m), natsMsg_GetDataLength(m));
    natsMsg_Destroy(m);
  }
};

}  // namespace

TEST_CASE("a JetStream publish through native::Request: ack, duplicate, refusal in the server's words, no stream") {
  catga::test::NatsServer server;
  auto conn = connect(server, "native-request");
  catga::nats::StreamOptions so;
  so.storage = catga::nats::StorageType::memory;
  REQUIRE(catga::nats::ensure_stream(*conn, "REQ_TEST", {"req.>"}, so));

  native::Request request(*conn);
  auto publish = [&](const char* subject, native::PublishChecks checks) {
    native::MsgHandle msg;
    REQUIRE(natsMsg_Create(msg.out(), subject, request.next_reply(), "x", 1) == NATS_OK);
    return request.js_publish(msg.get(), checks, 2'000);
  };
  auto first = publish("req.a", {.msg_id = "m-1", .last_subject_sequence = 0});
  REQUIRE(first.status == NATS_OK);
  CHECK(first.ack.stream == "REQ_TEST");
  CHECK(first.ack.sequence == 1);
  CHECK_FALSE(first.ack.duplicate);

  auto again = publish("req.a", {.msg_id = "m-1", .last_subject_sequence = std::nullopt});
  REQUIRE(again.status == NATS_OK);
  CHECK(again.ack.duplicate);
  CHECK(again.ack.sequence == 1);

  auto stale = publish("req.a", {.msg_id = "m-2", .last_subject_sequence = 0});
  CHECK(stale.status == NATS_ERR);
  CHECK(stale.js_error == JSStreamWrongLastSequenceErr);
  CHECK(stale.refusal.find("wrong last sequence") != std::string::npos);
  const auto e = native::to_error(stale.status, stale.js_error, "append", native::Surface::jetstream, stale.refusal);
  CHECK(e.code == catga::errc::conflict);
  CHECK(e.message.find("wrong last sequence") != std::string::npos);

  auto next = publish("req.a", {.msg_id = "m-3", .last_subject_sequence = 1});
  REQUIRE(next.status == NATS_OK);
  CHECK(next.ack.sequence == 2);

  auto nowhere = publish("nostream.a", {});
  CHECK(nowhere.status == NATS_NO_RESPONDERS);
}

TEST_CASE("a reply that comes after its try gave up is not taken for a later try's answer") {
  catga::test::NatsServer server;
  auto conn = connect(server, "native-request");
  catga::test::RawNats raw(server.url());
  Echo echo(raw, "slow.echo", 400ms);

  {
    native::Request request(*conn);
    native::MsgHandle first;
    REQUIRE(natsMsg_Create(first.out(), "slow.echo", request.next_reply(), "first", 5) == NATS_OK);
    native::MsgHandle reply;
    CHECK(request.send(first.get(), 100, reply) == NATS_TIMEOUT);
    // The same Request, a new try: the first answer arrives while it waits.
    native::MsgHandle second;
    REQUIRE(natsMsg_Create(second.out(), "slow.echo", request.next_reply(), "second", 6) == NATS_OK);
    REQUIRE(request.send(second.get(), 2'000, reply) == NATS_OK);
    CHECK(body_of(reply.get()) == "second");
  }
  // Another Request reuses the inbox of the first one (the pool): a reply
  // still on its way to it is not this one's either.
  echo.seen = 0;
  {
    native::Request request(*conn);
    native::MsgHandle first;
    REQUIRE(natsMsg_Create(first.out(), "slow.echo", request.next_reply(), "third", 5) == NATS_OK);
    native::MsgHandle reply;
    CHECK(request.send(first.get(), 100, reply) == NATS_TIMEOUT);
  }
  native::Request request(*conn);
  native::MsgHandle msg;
  REQUIRE(natsMsg_Create(msg.out(), "slow.echo", request.next_reply(), "fourth", 6) == NATS_OK);
  native::MsgHandle reply;
  REQUIRE(request.send(msg.get(), 2'000, reply) == NATS_OK);
  CHECK(body_of(reply.get()) == "fourth");
  // Nobody listening.
  native::MsgHandle lost;
  REQUIRE(natsMsg_Create(lost.out(), "nobody.there", request.next_reply(), "x", 1) == NATS_OK);
  CHECK(request.send(lost.get(), 2'000, reply) == NATS_NO_RESPONDERS);
}

TEST_CASE("requests from many threads at once each get their own answer") {
  catga::test::NatsServer server;
  auto conn = connect(server, "native-request");
  catga::test::RawNats raw(server.url());
  Echo echo(raw, "echo", 0ms);
  std::atomic<int> wrong{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        native::Request request(*conn);
        const std::string body = std::to_string(t) + ":" + std::to_string(i);
        native::MsgHandle msg;
        if (natsMsg_Create(msg.out(), "echo", request.next_reply(), body.data(), static_cast<int>(body.size())) !=
            NATS_OK) {
          ++failed;
          continue;
        }
        native::MsgHandle reply;
        if (request.send(msg.get(), 5'000, reply) != NATS_OK) {
          ++failed;
        } else if (body_of(reply.get()) != body) {
          ++wrong;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failed == 0);
  CHECK(wrong == 0);
  CHECK(echo.seen == 1'600);
}

TEST_CASE("KV writes are answered on catga's reply subscriptions, not through nats.c's response subscription") {
  // natsConnection_RequestMsg (under js_PublishMsg) answers on the
  // connection's response subscription, _INBOX.<id>.<token>, whose delivery
  // thread then wakes the caller: a thread switch per request more.
  catga::test::NatsServer server;
  catga::test::RawNats raw(server.url());
  natsSubscription* replies = nullptr;
  catga::test::check(natsConnection_SubscribeSync(&replies, raw.nc(), "_INBOX.>"), "subscribe");
  catga::test::check(natsConnection_Flush(raw.nc()), "flush");
  auto conn = connect(server, "native-request");
  catga::nats::KvBucketOptions o;
  o.bucket = "native_request";
  o.storage = catga::nats::StorageType::memory;
  auto bucket = catga::nats::KvBucket::open(conn, o).value();
  auto rev = bucket->create("k", "1");
  REQUIRE(rev);
  REQUIRE(bucket->update("k", "2", *rev));
  catga::test::check(natsConnection_Flush(raw.nc()), "flush");
  int seen = 0;
  int ours = 0;
  natsMsg* m = nullptr;
  // Opening the bucket (nats.c's own API calls) answers on nats.c's inbox;
  // the two writes must not.
  while (natsSubscription_NextMsg(&m, replies, 100) == NATS_OK) {
    const std::string subject = natsMsg_GetSubject(m);
    natsMsg_Destroy(m);
    ++seen;
    if (subject.find(".c.") != std::string::npos) ++ours;
  }
  natsSubscription_Destroy(replies);
  INFO("replies seen: " << seen);
  CHECK(ours == 2);
}

TEST_CASE("a connection whose reply subscriptions were used drains and closes in time") {
  // A drain waits for a synchronous subscription until someone reads it:
  // Connection::close unsubscribes them first (before: every close waited
  // out the drain timeout and reported it).
  catga::test::NatsServer server;
  auto conn = connect(server, "native-request");
  catga::nats::KvBucketOptions o;
  o.bucket = "native_close";
  o.storage = catga::nats::StorageType::memory;
  auto bucket = catga::nats::KvBucket::open(conn, o).value();
  REQUIRE(bucket->create("k", "1"));
  auto closed = conn->close(2s);
  CHECK_MESSAGE(closed, (closed ? "" : closed.error().message));
  const auto error = conn->last_error();
  CHECK_MESSAGE(!error, (error ? error->message : ""));  // before: "Drain error: timeout waiting for subscriptions"
  // A request after the close fails at once, as nats.c's would.
  native::Request request(*conn);
  CHECK(request.next_reply() == nullptr);
}

TEST_CASE("without send_asap a request is nats.c's own (a plain publish would wait for its flusher)") {
  catga::test::NatsServer server;
  auto conn = connect(server, "native-request", /*send_asap=*/false);
  catga::test::RawNats raw(server.url());
  Echo echo(raw, "echo", 0ms);
  native::Request request(*conn);
  CHECK(request.next_reply() == nullptr);
  native::MsgHandle msg;
  REQUIRE(natsMsg_Create(msg.out(), "echo", request.next_reply(), "plain", 5) == NATS_OK);
  native::MsgHandle reply;
  REQUIRE(request.send(msg.get(), 2'000, reply) == NATS_OK);
  CHECK(body_of(reply.get()) == "plain");
}
