#include "message.hpp"


#include "catga/wire.hpp"
#include "error.hpp"
#include "header_block.hpp"
#include "natsc_internals.hpp"

namespace catga::nats::detail {
namespace {

// Appends "key: value\r\n" with the value as set_header leaves it: CR and
// LF become spaces (as nats.c's own encoder does), cut at 8 KiB and at a NUL
// (nats.c takes C strings).
void append_header(std::string& out, std::string_view key, std::string_view value) {
  out.append(key).append(": ");
  const std::size_t start = out.size();
  value = value.substr(0, kMaxHeaderValue);
  out.append(value.substr(0, value.find('\0')));
  for (std::size_t i = start; i < out.size(); ++i) {
    if (out[i] == '\r' || out[i] == '\n') out[i] = ' ';
  }
  out.append("\r\n");
}

Status check_header_name(std::string_view key) {
  if (is_header_name(key)) return {};
  return make_error(errc::validation, "invalid header name '" + header_safe(key, 64) +
                                          "': 1 or more visible ASCII characters other than ':' expected");
}

}  // namespace

// The header block and the body in one buffer, handed to natsMsg_create
// (nats.c's constructor for received messages, exported but not in nats.h;
// natsc_internals.hpp):
// nats.c sends an untouched block as it is, so publishing costs one buffer
// instead of a hash with an allocation per header name and value.
Result<MsgHandle> make_message_from_block(const std::string& subject, const OutboundMessage& message,
                                          const char* reply) {
  // One buffer per thread, kept between messages (a huge one is let go).
  thread_local std::string buf;
  buf.clear();
  buf.append("NATS/1.0\r\n");
  Status hs;
  wire::write_headers(message.context, message.info.name, [&](std::string_view k, std::string_view v) {
    if (!hs) return;
    hs = check_header_name(k);
    if (hs) append_header(buf, k, v);
  }, wire::deadline_travels(message.info.kind), message.info.version);
  if (!hs) return std::move(hs).error();
  buf.append("\r\n");
  const std::size_t header_len = buf.size();
  buf.append(message.body);
  MsgHandle msg;
  const natsStatus s = natsc_internals::create_message(msg.out(), subject, reply, buf.data(),
                                                       static_cast<int>(buf.size()), static_cast<int>(header_len));
  if (buf.capacity() > (std::size_t{1} << 20)) std::string().swap(buf);
  if (s != NATS_OK) return to_error(s, "create message for '" + subject + "'");
  return msg;
}

Result<MsgHandle> make_message_via_api(const std::string& subject, const OutboundMessage& message, const char* reply) {
  MsgHandle msg;
  natsStatus s = natsMsg_Create(msg.out(), subject.c_str(), reply, message.body.data(),
                                static_cast<int>(message.body.size()));
  if (s != NATS_OK) return to_error(s, "create message for '" + subject + "'");
  Status hs;
  wire::write_headers(message.context, message.info.name, [&](std::string_view k, std::string_view v) {
    if (!hs) return;
    hs = check_header_name(k);
    if (hs) hs = set_header(msg.get(), k, v);
  }, wire::deadline_travels(message.info.kind), message.info.version);
  if (!hs) return std::move(hs).error();
  return msg;
}

Result<MsgHandle> make_message(const std::string& subject, const OutboundMessage& message, const char* reply) {
  return natsc_internals::enabled() ? make_message_from_block(subject, message, reply)
                                : make_message_via_api(subject, message, reply);
}

}  // namespace catga::nats::detail
