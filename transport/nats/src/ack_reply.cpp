#include "ack_reply.hpp"

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <limits>

#include "catga/wire.hpp"

// parse_ack_reply and parse_status_code are public (catga/nats/ack_reply.hpp);
// AckPrefix and its fast path stay in detail.
namespace catga::nats {
namespace {

template <class T>
bool parse_number(std::string_view s, T& out) noexcept {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// from_chars for an unsigned count, without its per-digit overflow check
// where none can happen (up to 19 digits fit in 64 bits).
bool parse_count(std::string_view s, std::uint64_t& out) noexcept {
  if (s.empty() || s.size() > 19) return parse_number(s, out);
  return wire::read_count(s, out) == s.size();
}

// from_chars for the signed timestamp: a count when it has no sign.
bool parse_timestamp(std::string_view s, std::int64_t& out) noexcept {
  if (!s.empty() && s.front() == '-') return parse_number(s, out);
  std::uint64_t v = 0;
  if (!parse_count(s, v) || v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return false;
  out = static_cast<std::int64_t>(v);
  return true;
}

}  // namespace

std::optional<AckMetadata> parse_ack_reply(std::string_view reply) noexcept {
  constexpr std::string_view kPrefix = "$JS.ACK.";
  constexpr std::size_t kMaxTokens = 16;  // "$JS" and "ACK" included
  if (!reply.starts_with(kPrefix)) return std::nullopt;
  std::array<std::string_view, kMaxTokens> t;
  std::size_t n = 2;
  const char* const end = reply.data() + reply.size();
  for (const char* start = reply.data() + kPrefix.size();;) {
    const void* found = std::memchr(start, '.', static_cast<std::size_t>(end - start));
    const char* const dot = found == nullptr ? end : static_cast<const char*>(found);
    if (n == kMaxTokens) return std::nullopt;
    t[n++] = std::string_view(start, static_cast<std::size_t>(dot - start));
    if (dot == end) break;
    start = dot + 1;
  }
  if (n < 9) return std::nullopt;
  AckMetadata m;
  std::size_t i = 2;
  if (n == 9) {
    // v1: no domain, no account hash.
  } else if (n >= 11) {
    m.domain = t[2] == "_" ? std::string_view{} : t[2];
    i = 4;  // skip domain and account hash
  } else {
    return std::nullopt;
  }
  m.stream = t[i];
  m.consumer = t[i + 1];
  if (m.stream.empty() || m.consumer.empty()) return std::nullopt;
  if (!parse_count(t[i + 2], m.delivered) || !parse_count(t[i + 3], m.stream_seq) ||
      !parse_count(t[i + 4], m.consumer_seq) || !parse_timestamp(t[i + 5], m.timestamp_ns) ||
      !parse_count(t[i + 6], m.pending)) {
    return std::nullopt;
  }
  return m;
}

detail::AckPrefix detail::AckPrefix::of(std::string_view stream, std::string_view consumer) {
  AckPrefix p;
  if (stream.empty() || consumer.empty() || stream.find('.') != std::string_view::npos ||
      consumer.find('.') != std::string_view::npos) {
    return p;
  }
  p.text_.reserve(10 + stream.size() + consumer.size());
  p.text_.append("$JS.ACK.").append(stream).append(".").append(consumer).append(".");
  p.stream_size_ = stream.size();
  return p;
}

std::optional<AckMetadata> detail::parse_ack_reply(std::string_view reply, const AckPrefix& prefix) noexcept {
  const std::string& known = prefix.text();
  if (known.empty() || !reply.starts_with(known)) return parse_ack_reply(reply);
  // Exactly five plain counts of 1-19 digits, dot-separated, then the end:
  // anything else (a sign, a long number, more tokens) takes the general path.
  std::uint64_t n[5];
  const char* p = reply.data() + known.size();
  const char* const end = reply.data() + reply.size();
  for (int i = 0; i < 5; ++i) {
    const std::size_t digits = wire::read_count(std::string_view(p, static_cast<std::size_t>(end - p)), n[i]);
    if (digits == 0 || digits > 19) return parse_ack_reply(reply);
    p += digits;
    if (i < 4) {
      if (p == end || *p != '.') return parse_ack_reply(reply);
      ++p;
    }
  }
  if (p != end || n[3] > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return parse_ack_reply(reply);
  }
  AckMetadata m;
  m.stream = reply.substr(8, prefix.stream_size());
  m.consumer = reply.substr(9 + prefix.stream_size(), known.size() - 10 - prefix.stream_size());
  m.delivered = n[0];
  m.stream_seq = n[1];
  m.consumer_seq = n[2];
  m.timestamp_ns = static_cast<std::int64_t>(n[3]);
  m.pending = n[4];
  return m;
}

int parse_status_code(std::string_view status_header) noexcept {
  int code = 0;
  while (!status_header.empty() && status_header.front() == ' ') status_header.remove_prefix(1);
  if (status_header.size() > 3) status_header = status_header.substr(0, 3);
  return parse_number(status_header, code) ? code : 0;
}

}  // namespace catga::nats
