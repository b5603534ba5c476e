#include "catga/nats/native/message.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "catga/nats/native/error.hpp"

namespace catga::nats::native {
namespace {

// nats.c wants C strings; header names are short, so they go on the stack.
template <class F>
auto with_c_string(std::string_view s, F&& f) {
  char buf[256];
  if (s.size() < sizeof buf) {
    std::memcpy(buf, s.data(), s.size());
    buf[s.size()] = '\0';
    return f(static_cast<const char*>(buf));
  }
  std::string copy(s);
  return f(copy.c_str());
}

}  // namespace

std::string header_safe(std::string_view value, std::size_t max) {
  std::string out;
  out.reserve(std::min(value.size(), max));
  for (char c : value) {
    if (out.size() >= max) break;
    out.push_back(c == '\r' || c == '\n' ? ' ' : c);
  }
  return out;
}

Status set_header(natsMsg* msg, std::string_view key, std::string_view value) {
  auto set = [&](std::string_view v) {
    return with_c_string(key, [&](const char* k) {
      return with_c_string(v, [&](const char* cv) { return natsMsgHeader_Set(msg, k, cv); });
    });
  };
  // The usual value is short and clean: no copy beyond the stack buffer.
  // (A plain loop: find_first_of("\r\n") calls memchr once per character.)
  bool line_break = false;
  for (const char c : value) line_break |= (c == '\r') | (c == '\n');
  const bool clean = value.size() <= kMaxHeaderValue && !line_break;
  const natsStatus s = clean ? set(value) : set(header_safe(value, kMaxHeaderValue));
  if (s != NATS_OK) return to_error(s, "set header '" + std::string(key) + "'");
  return {};
}

std::optional<std::string_view> get_header(natsMsg* msg, std::string_view key) noexcept {
  const char* value = nullptr;
  const natsStatus s = with_c_string(key, [&](const char* k) { return natsMsgHeader_Get(msg, k, &value); });
  if (s != NATS_OK || value == nullptr) return std::nullopt;
  return std::string_view(value);
}

void for_each_header(natsMsg* msg, FunctionRef<void(std::string_view, std::string_view)> visit) {
  const char** keys = nullptr;
  int count = 0;
  if (natsMsgHeader_Keys(msg, &keys, &count) != NATS_OK || keys == nullptr) return;
  // The array is ours to free (the strings belong to the message).
  struct FreeKeys {
    const char** p;
    ~FreeKeys() { std::free(static_cast<void*>(p)); }
  } free_keys{keys};
  for (int i = 0; i < count; ++i) {
    const char** values = nullptr;
    int n = 0;
    if (natsMsgHeader_Values(msg, keys[i], &values, &n) != NATS_OK || values == nullptr) continue;
    struct FreeValues {
      const char** p;
      ~FreeValues() { std::free(static_cast<void*>(p)); }
    } free_values{values};
    for (int j = 0; j < n; ++j) visit(keys[i], values[j]);
  }
}

}  // namespace catga::nats::native
