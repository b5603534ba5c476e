#pragma once
// Reading and writing headers, subject and body of a nats.c natsMsg the way
// catga does (nats.c level: includes <nats/nats.h>, see
// catga/nats/native/handle.hpp).
//
//   catga::nats::native::MsgHandle msg;
//   natsMsg_Create(msg.out(), subject.c_str(), nullptr, body.data(), static_cast<int>(body.size()));
//   if (auto s = catga::nats::native::set_header(msg.get(), "Catga-Type", "OrderPlaced"); !s) return s;
//   ...
//   auto type = catga::nats::native::get_header(received, "Catga-Type");  // view into `received`

#include <nats/nats.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "catga/function_ref.hpp"
#include "catga/result.hpp"

namespace catga::nats::native {

// Longest header value catga writes: longer ones are cut (set_header and
// every header catga builds).
inline constexpr std::size_t kMaxHeaderValue = 8192;

// Header values cannot hold CR/LF; long texts (error messages) are cut at
// `max`. CR and LF become spaces.
std::string header_safe(std::string_view value, std::size_t max = 1024);

// Sets (replaces) header `key` = `value` on a message being built; the value
// is made header-safe (CR/LF → space, cut at kMaxHeaderValue).
Status set_header(natsMsg* msg, std::string_view key, std::string_view value);

// Reads a header of a received message (nullopt when absent). The view
// lives as long as the message.
std::optional<std::string_view> get_header(natsMsg* msg, std::string_view key) noexcept;

// Calls visit(key, value) for every header value of a received message.
void for_each_header(natsMsg* msg, FunctionRef<void(std::string_view, std::string_view)> visit);

// Subject, reply subject and body as views into the message (empty when absent).
inline std::string_view subject_of(natsMsg* m) noexcept {
  const char* s = natsMsg_GetSubject(m);
  return s != nullptr ? std::string_view(s) : std::string_view{};
}
inline std::string_view reply_of(natsMsg* m) noexcept {
  const char* s = natsMsg_GetReply(m);
  return s != nullptr ? std::string_view(s) : std::string_view{};
}
inline std::string_view body_of(natsMsg* m) noexcept {
  const char* d = natsMsg_GetData(m);
  return d != nullptr ? std::string_view(d, static_cast<std::size_t>(natsMsg_GetDataLength(m))) : std::string_view{};
}

}  // namespace catga::nats::native
