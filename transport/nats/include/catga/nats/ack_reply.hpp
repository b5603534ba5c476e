#pragma once
// AckMetadata: what JetStream says about a delivered message, read from its
// reply (ack) subject: stream sequence, delivery count, pending count.

#include <cstdint>
#include <optional>
#include <string_view>

namespace catga::nats {

// The metadata in a JetStream ack subject:
//   v1: $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
//   v2: $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>[.<token>...]
// ("_" as domain means none). The views point into the parsed subject.
//
//   if (auto meta = catga::nats::parse_ack_reply(reply)) {
//     checkpoint = meta->stream_seq;
//     if (meta->delivered > 1) ...;  // a redelivery
//   }
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

// A status message on a pull request's inbox ("NATS/1.0 408 Request
// Timeout"): the number of its Status header, 0 when absent or not a number.
//
//   if (catga::nats::parse_status_code(status_header) == 404) ...;  // no messages
int parse_status_code(std::string_view status_header) noexcept;

}  // namespace catga::nats
