#pragma once
// What JetStream says about a delivered message, read from its reply subject.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace catga::nats::detail {

// The metadata in a JetStream ack subject:
//   v1: $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
//   v2: $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>[.<token>...]
// ("_" as domain means none). Views point into the subject.
struct AckMetadata {
  std::string_view domain;
  std::string_view stream;
  std::string_view consumer;
  std::uint64_t delivered = 0;     // delivery count, 1 on the first delivery
  std::uint64_t stream_seq = 0;
  std::uint64_t consumer_seq = 0;
  std::int64_t timestamp_ns = 0;   // when the message was stored (Unix ns)
  std::uint64_t pending = 0;       // messages left for the consumer
};

// nullopt when `reply` is not a JetStream ack subject of a known form.
std::optional<AckMetadata> parse_ack_reply(std::string_view reply) noexcept;

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

// A status message on a pull inbox ("NATS/1.0 408 Request Timeout"): the
// Status header's number, 0 when absent or not a number.
int parse_status_code(std::string_view status_header) noexcept;

}  // namespace catga::nats::detail
