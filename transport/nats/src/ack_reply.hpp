#pragma once
// The fast path of ack-subject parsing for a consumer's own subjects; the
// general parser and AckMetadata are public (catga/nats/ack_reply.hpp).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "catga/nats/ack_reply.hpp"

namespace catga::nats::detail {

using nats::AckMetadata;
using nats::parse_ack_reply;
using nats::parse_status_code;

// "$JS.ACK.<stream>.<consumer>.": how every v1 ack subject of one consumer
// starts. Made once per consumer; empty (never matching) when a name is
// empty or holds a '.'.
//
//   const auto prefix = AckPrefix::of("CATGA_EVENTS", "billing_OrderPlaced");
//   auto meta = parse_ack_reply(natsMsg_GetReply(m), prefix);
class AckPrefix {
 public:
  static AckPrefix of(std::string_view stream, std::string_view consumer);
  const std::string& text() const noexcept { return text_; }
  std::size_t stream_size() const noexcept { return stream_size_; }

 private:
  std::string text_;
  std::size_t stream_size_ = 0;
};

// The same answer as parse_ack_reply(reply), read in one pass over the
// numbers when `reply` starts with `prefix` (the consumer's own v1 subjects).
std::optional<AckMetadata> parse_ack_reply(std::string_view reply, const AckPrefix& prefix) noexcept;

}  // namespace catga::nats::detail
