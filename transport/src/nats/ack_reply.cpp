#include "ack_reply.hpp"

#include <array>
#include <charconv>

namespace catga::nats::detail {
namespace {

template <class T>
bool parse_number(std::string_view s, T& out) noexcept {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

std::optional<AckMetadata> parse_ack_reply(std::string_view reply) noexcept {
  constexpr std::size_t kMaxTokens = 16;
  std::array<std::string_view, kMaxTokens> t{};
  std::size_t n = 0;
  std::size_t start = 0;
  while (true) {
    const auto dot = reply.find('.', start);
    if (n == kMaxTokens) return std::nullopt;
    t[n++] = reply.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (n < 9 || t[0] != "$JS" || t[1] != "ACK") return std::nullopt;
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
  if (!parse_number(t[i + 2], m.delivered) || !parse_number(t[i + 3], m.stream_seq) ||
      !parse_number(t[i + 4], m.consumer_seq) || !parse_number(t[i + 5], m.timestamp_ns) ||
      !parse_number(t[i + 6], m.pending)) {
    return std::nullopt;
  }
  return m;
}

int parse_status_code(std::string_view status_header) noexcept {
  int code = 0;
  while (!status_header.empty() && status_header.front() == ' ') status_header.remove_prefix(1);
  if (status_header.size() > 3) status_header = status_header.substr(0, 3);
  return parse_number(status_header, code) ? code : 0;
}

}  // namespace catga::nats::detail
