#pragma once
// natsMsg ⇄ catga: outbound messages with wire headers, deliveries.

#include <nats/nats.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "catga/nats/native/message.hpp"
#include "catga/transport.hpp"
#include "catga/wire.hpp"
#include "handle.hpp"
#include "header_block.hpp"

namespace catga::nats::detail {

// Header and body helpers are public, for code that calls nats.c itself
// (catga/nats/native/message.hpp).
using native::body_of;
using native::for_each_header;
using native::get_header;
using native::header_safe;
using native::kMaxHeaderValue;
using native::reply_of;
using native::set_header;
using native::subject_of;

// A new message for `subject` with body and the wire headers of `message`
// (wire::write_headers: Nats-Msg-Id, Catga-Type, ...). `reply` may be null.
// Header values are made header-safe (CR and LF become spaces, cut at
// 8 KiB); a header name that is not visible ASCII without ':' is a
// `validation` error. While natsc_internals::enabled() the header block is
// written here (make_message_from_block: natsMsg_create, outside nats.h),
// otherwise through nats.c's header API (make_message_via_api); both give the
// same message (tests/nats/unit_test.cpp). make_message_from_block may be
// called only while natsc_internals::enabled().
Result<MsgHandle> make_message(const std::string& subject, const OutboundMessage& message, const char* reply = nullptr);
Result<MsgHandle> make_message_from_block(const std::string& subject, const OutboundMessage& message,
                                          const char* reply);
Result<MsgHandle> make_message_via_api(const std::string& subject, const OutboundMessage& message, const char* reply);

// catga::Delivery over a received natsMsg (borrowed for the handler call).
// Headers are read from the raw block in place (HeaderBlock); through
// nats.c's API only when the block is unusual.
class NatsDelivery final : public Delivery {
 public:
  NatsDelivery(natsMsg* msg, int attempt, std::uint64_t sequence, std::function<void()> in_progress = {}) noexcept
      : msg_(msg), headers_(msg), attempt_(attempt), sequence_(sequence), in_progress_(std::move(in_progress)) {}

  std::string_view subject() const noexcept override { return subject_of(msg_); }
  std::string_view body() const noexcept override { return body_of(msg_); }
  std::optional<std::string_view> header(std::string_view name) const noexcept override {
    return headers_.valid() ? headers_.get(name) : get_header(msg_, name);
  }
  void for_each_header(FunctionRef<void(std::string_view, std::string_view)> visit) const override {
    if (headers_.valid()) {
      headers_.for_each(visit);
    } else {
      detail::for_each_header(msg_, visit);
    }
  }
  int attempt() const noexcept override { return attempt_; }
  std::uint64_t sequence() const noexcept override { return sequence_; }
  void in_progress() noexcept override {
    if (in_progress_) {
      try {
        in_progress_();
      } catch (...) {
      }
    }
  }

 private:
  natsMsg* msg_;
  HeaderBlock headers_;
  int attempt_;
  std::uint64_t sequence_;
  std::function<void()> in_progress_;
};

}  // namespace catga::nats::detail
