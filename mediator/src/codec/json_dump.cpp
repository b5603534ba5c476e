// wire::dump_json: the bytes nlohmann's j.dump() writes, faster for the
// common case. nlohmann's serializer runs a UTF-8 decoder over every
// character of every string; a message body is mostly plain ASCII text, which
// is copied here as it is. Anything else — strings that need escaping or hold
// non-ASCII bytes, floating-point numbers, binary values — is written by
// nlohmann itself, so the output stays byte for byte nlohmann's (checked by
// tests/mediator/json_fast_test.cpp).

#include <charconv>

#include "catga/json_fields.hpp"
#include "catga/wire.hpp"

namespace catga::wire {
namespace {

// Printable ASCII except '"' and '\\': written as is by nlohmann too.
constexpr auto kPlain = [] {
  struct Table {
    bool plain[256];
  } t{};
  for (int c = 0; c < 256; ++c) t.plain[c] = c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  return t;
}();

void dump_string(const std::string& s, std::string& out) {
  // Escapes or UTF-8: nlohmann's text (it validates UTF-8 and throws on invalid bytes).
  if (!detail::write_plain_string(out, s)) out += nlohmann::json(s).dump();
}

template <class Int>
void dump_integer(Int v, std::string& out) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;  // 24 bytes hold any 64-bit integer
  out.append(buf, end);
}

void dump_value(const nlohmann::json& j, std::string& out) {
  switch (j.type()) {
    case nlohmann::json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, value] : j.get_ref<const nlohmann::json::object_t&>()) {
        if (!first) out += ',';
        first = false;
        dump_string(key, out);
        out += ':';
        dump_value(value, out);
      }
      out += '}';
      return;
    }
    case nlohmann::json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& value : j.get_ref<const nlohmann::json::array_t&>()) {
        if (!first) out += ',';
        first = false;
        dump_value(value, out);
      }
      out += ']';
      return;
    }
    case nlohmann::json::value_t::string: dump_string(j.get_ref<const std::string&>(), out); return;
    case nlohmann::json::value_t::boolean: out += j.get<bool>() ? "true" : "false"; return;
    case nlohmann::json::value_t::null: out += "null"; return;
    case nlohmann::json::value_t::number_integer: dump_integer(j.get<std::int64_t>(), out); return;
    case nlohmann::json::value_t::number_unsigned: dump_integer(j.get<std::uint64_t>(), out); return;
    default: out += j.dump(); return;  // floats, binary, discarded: nlohmann's own text
  }
}

}  // namespace

std::string dump_json(const nlohmann::json& j) {
  std::string out;
  out.reserve(128);
  dump_value(j, out);
  return out;
}

namespace detail {

bool write_plain_string(std::string& out, std::string_view s) {
  for (const char c : s) {
    if (!kPlain.plain[static_cast<unsigned char>(c)]) return false;
  }
  out += '"';
  out += s;
  out += '"';
  return true;
}

}  // namespace detail

}  // namespace catga::wire
