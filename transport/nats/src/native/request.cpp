#include "catga/nats/native/request.hpp"

#include <charconv>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string_view>

#include "../connection_impl.hpp"
#include "../reply_inboxes.hpp"

namespace catga::nats::native {

using Clock = std::chrono::steady_clock;

Request::Request(const Connection& connection)
    : connection_(connection), nc_(detail::impl_of(connection).conn()) {
  // Without send_asap a plain publish waits for nats.c's flusher thread
  // (about 1 ms on loopback), while natsConnection_RequestMsg writes its
  // request at once: such connections keep nats.c's request.
  if (nc_ != nullptr && detail::impl_of(connection).options.send_asap) {
    inbox_ = detail::impl_of(connection).replies.take(nc_);
  }
}

Request::~Request() {
  if (inbox_ != nullptr) detail::impl_of(connection_).replies.give_back(inbox_);
}

const char* Request::next_reply() {
  if (inbox_ == nullptr) return nullptr;
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, ++inbox_->next).ptr;
  reply_.assign(inbox_->prefix).append(digits, end);
  return reply_.c_str();
}

natsStatus Request::send(natsMsg* msg, std::int64_t timeout_ms, MsgHandle& reply) {
  const char* to = natsMsg_GetReply(msg);
  if (inbox_ == nullptr || to == nullptr || reply_ != to) {
    return natsConnection_RequestMsg(reply.out(), nc_, msg, timeout_ms);
  }
  if (timeout_ms <= 0) return NATS_TIMEOUT;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  if (natsStatus s = natsConnection_PublishMsg(nc_, msg); s != NATS_OK) return s;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return NATS_TIMEOUT;
    MsgHandle m;
    const natsStatus s = natsSubscription_NextMsg(m.out(), inbox_->sub, left);
    if (s == NATS_INVALID_SUBSCRIPTION) return NATS_CONNECTION_CLOSED;  // shut by Connection::close
    if (s != NATS_OK) return s;
    if (reply_ != natsMsg_GetSubject(m.get())) continue;  // the late reply of an earlier try
    if (natsMsg_IsNoResponders(m.get())) return NATS_NO_RESPONDERS;
    reply = std::move(m);
    return NATS_OK;
  }
}

PublishAnswer Request::js_publish(natsMsg* msg, const PublishChecks& checks, std::int64_t timeout_ms) {
  PublishAnswer a;
  if (checks.msg_id != nullptr) a.status = natsMsgHeader_Set(msg, "Nats-Msg-Id", checks.msg_id);
  if (a.status == NATS_OK && checks.last_subject_sequence) {
    char digits[24];
    *std::to_chars(digits, digits + sizeof digits - 1, *checks.last_subject_sequence).ptr = '\0';
    a.status = natsMsgHeader_Set(msg, "Nats-Expected-Last-Subject-Sequence", digits);
  }
  if (a.status != NATS_OK) return a;
  MsgHandle reply;
  a.status = send(msg, timeout_ms, reply);
  if (a.status != NATS_OK) return a;
  const char* data = natsMsg_GetData(reply.get());
  const auto j = nlohmann::json::parse(
      std::string_view(data != nullptr ? data : "", static_cast<std::size_t>(natsMsg_GetDataLength(reply.get()))),
      nullptr, false);
  if (!j.is_object()) {
    a.status = NATS_ERR;
    a.refusal = "JetStream's answer is not JSON";
    return a;
  }
  if (const auto e = j.find("error"); e != j.end() && e->is_object()) {
    a.status = NATS_ERR;
    a.js_error = static_cast<jsErrCode>(e->value("err_code", 0));
    a.refusal = e->value("description", std::string("refused"));
    return a;
  }
  a.ack.stream = j.value("stream", std::string());
  a.ack.sequence = j.value("seq", std::uint64_t{0});
  a.ack.duplicate = j.value("duplicate", false);
  return a;
}

}  // namespace catga::nats::native
