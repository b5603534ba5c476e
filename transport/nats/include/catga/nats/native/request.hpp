#pragma once
// native::Request: a request (or a JetStream publish) whose reply comes
// straight to the waiting thread.

#include <nats/nats.h>

#include <cstdint>
#include <optional>
#include <string>

#include "catga/nats/connection.hpp"
#include "catga/nats/native/handle.hpp"

namespace catga::nats {
namespace detail {
struct ReplyInbox;
}  // namespace detail

namespace native {

// A JetStream publish acknowledgement.
struct PubAck {
  std::string stream;
  std::uint64_t sequence = 0;
  bool duplicate = false;  // deduplicated by Nats-Msg-Id: stored earlier
};

// What js_PublishMsg takes from jsPubOptions (the part catga uses), written
// as the same headers.
struct PublishChecks {
  const char* msg_id = nullptr;                        // Nats-Msg-Id
  std::optional<std::uint64_t> last_subject_sequence;  // Nats-Expected-Last-Subject-Sequence; 0: none yet
};

// The answer of Request::js_publish: js_PublishMsg's status and JetStream
// error code, and the server's words for a refusal ("wrong last sequence: 7").
struct PublishAnswer {
  natsStatus status = NATS_OK;
  jsErrCode js_error = static_cast<jsErrCode>(0);
  std::string refusal;
  PubAck ack;
};

// Requests on `connection`, one at a time, answered on a reply subscription
// of this Request's own (from a pool per connection, given back by the
// destructor): nats.c's reader thread queues the reply there and wakes the
// waiting thread itself. natsConnection_RequestMsg's replies go through the
// connection's response subscription and its delivery thread first: one
// thread switch more per request, which under load was a large share of
// the sample's CPU (BENCHMARKS.md, "orderflow"). Each try has its own reply
// subject; a reply that comes after its try gave up is dropped by the next.
// Only on connections with NatsOptions::send_asap (otherwise a publish
// waits for nats.c's flusher thread, about 1 ms, where nats.c's request
// writes at once): without it, or without a reply subscription (it could
// not be made, the connection is closing), next_reply() is nullptr and
// send() is natsConnection_RequestMsg.
//
//   native::Request req(*connection);
//   native::MsgHandle msg;
//   natsMsg_Create(msg.out(), "$KV.orders.o-1", req.next_reply(), "paid", 4);
//   auto answer = req.js_publish(msg.get(), {.last_subject_sequence = 7}, 2'000);
//   if (answer.status == NATS_OK) use(answer.ack.sequence);
class Request {
 public:
  explicit Request(const Connection& connection);
  ~Request();
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  // The reply subject to make the next try's message with (new per call).
  const char* next_reply();
  // Publishes `msg` (made with the last next_reply()) and waits up to
  // `timeout_ms` for its reply: NATS_OK with `reply`, NATS_NO_RESPONDERS,
  // NATS_TIMEOUT, or the publish's own error.
  natsStatus send(natsMsg* msg, std::int64_t timeout_ms, MsgHandle& reply);
  // js_PublishMsg: sets `checks` on `msg` as headers, send(), reads the ack.
  PublishAnswer js_publish(natsMsg* msg, const PublishChecks& checks, std::int64_t timeout_ms);

 private:
  const Connection& connection_;
  natsConnection* nc_ = nullptr;
  detail::ReplyInbox* inbox_ = nullptr;
  std::string reply_;
};

}  // namespace native
}  // namespace catga::nats
