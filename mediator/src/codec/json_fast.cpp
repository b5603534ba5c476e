// The fast path of wire::parse_json. nlohmann's lexer copies a document one
// character at a time through a growing token buffer: for a typical
// 128-byte message body that is about half the cost of consuming it. This
// parser builds the same nlohmann::json for the common shape of message
// bodies — objects, arrays, ASCII strings without escapes, integers, true,
// false, null, read by JsonCursor — and gives up on anything else (escapes,
// non-ASCII bytes, fractions and exponents, very deep nesting, invalid
// text). parse_json then runs nlohmann's parser on the whole body, so what
// is accepted and what a rejection says stay nlohmann's by construction; the
// differential test in tests/mediator/json_fast_test.cpp checks that both
// agree on the values.

#include "json_cursor_inline.hpp"
#include "catga/wire.hpp"

namespace catga::wire {
namespace {

bool fast_value(JsonCursor& c, nlohmann::json& out, int depth) {
  switch (c.peek()) {
    case '{': {
      if (depth >= JsonCursor::kMaxDepth) return false;
      c.object_begin();
      out = nlohmann::json::object();
      std::string_view key;
      for (bool first = true;; first = false) {
        const int r = c.object_next(first, key);
        if (r <= 0) return r == 0;
        // A repeated key keeps its last value, as in nlohmann's parser.
        if (!fast_value(c, out[std::string(key)], depth + 1)) return false;
      }
    }
    case '[': {
      if (depth >= JsonCursor::kMaxDepth) return false;
      c.array_begin();
      out = nlohmann::json::array();
      for (bool first = true;; first = false) {
        const int r = c.array_next(first);
        if (r <= 0) return r == 0;
        out.push_back(nullptr);
        if (!fast_value(c, out.back(), depth + 1)) return false;
      }
    }
    case '"': {
      std::string_view s;
      if (!c.string(s)) return false;
      out = std::string(s);
      return true;
    }
    case 't':
    case 'f': {
      bool b = false;
      if (!c.boolean(b)) return false;
      out = b;
      return true;
    }
    case 'n':
      if (!c.null()) return false;
      out = nullptr;
      return true;
    default: {
      // Integers only: number_unsigned when non-negative, number_integer
      // when negative, as nlohmann's parser makes them.
      std::uint64_t u = 0;
      std::int64_t i = 0;
      bool negative = false;
      if (!c.integer(u, i, negative)) return false;
      if (negative) {
        out = static_cast<nlohmann::json::number_integer_t>(i);
      } else {
        out = static_cast<nlohmann::json::number_unsigned_t>(u);
      }
      return true;
    }
  }
}

}  // namespace

bool parse_json_fast(std::string_view body, nlohmann::json& out) {
  JsonCursor c(body);
  return fast_value(c, out, 0) && c.end();
}

}  // namespace catga::wire
