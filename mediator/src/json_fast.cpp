// The fast path of wire::parse_json. nlohmann's lexer copies a document one
// character at a time through a growing token buffer: for a typical
// 128-byte message body that is about half the cost of consuming it. This
// parser builds the same nlohmann::json for the common shape of message
// bodies — objects, arrays, ASCII strings without escapes, integers, true,
// false, null — and gives up on anything else (escapes, non-ASCII bytes,
// fractions and exponents, very deep nesting, invalid text). parse_json then
// runs nlohmann's parser on the whole body, so what is accepted and what a
// rejection says stay nlohmann's by construction; the differential test in
// tests/mediator/json_fast_test.cpp checks that both agree on the values.

#include <cstdint>

#include "catga/wire.hpp"

namespace catga::wire {
namespace {

constexpr int kMaxDepth = 64;

// 1 for the bytes that end the fast scan of a string: '"', '\\', control
// characters and every non-ASCII byte (UTF-8 is left to nlohmann, which
// validates it).
constexpr auto kStringStop = [] {
  struct Table {
    bool stop[256];
  } t{};
  for (int c = 0; c < 256; ++c) t.stop[c] = c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
  return t;
}();

class FastParser {
 public:
  explicit FastParser(std::string_view text) noexcept : p_(text.data()), end_(text.data() + text.size()) {}

  bool document(nlohmann::json& out) {
    skip_ws();
    if (!value(out, 0)) return false;
    skip_ws();
    return p_ == end_;
  }

 private:
  void skip_ws() noexcept {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  bool value(nlohmann::json& out, int depth) {
    if (p_ == end_) return false;
    switch (*p_) {
      case '{': return object(out, depth + 1);
      case '[': return array(out, depth + 1);
      case '"': {
        std::string_view s;
        if (!string(s)) return false;
        out = std::string(s);
        return true;
      }
      case 't': return literal("true", out, true);
      case 'f': return literal("false", out, false);
      case 'n': return literal("null", out, nullptr);
      default: return number(out);
    }
  }

  template <class V>
  bool literal(std::string_view word, nlohmann::json& out, V v) {
    if (static_cast<std::size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) return false;
    p_ += word.size();
    out = v;
    return true;
  }

  // A string without escapes and non-ASCII bytes; *p_ is the opening quote.
  bool string(std::string_view& out) noexcept {
    const char* start = ++p_;
    while (p_ != end_ && !kStringStop.stop[static_cast<unsigned char>(*p_)]) ++p_;
    if (p_ == end_ || *p_ != '"') return false;
    out = std::string_view(start, static_cast<std::size_t>(p_ - start));
    ++p_;
    return true;
  }

  // -?(0|[1-9][0-9]*) that fits its nlohmann type: number_unsigned when
  // non-negative, number_integer when negative (as nlohmann's parser does).
  bool number(nlohmann::json& out) noexcept {
    const bool negative = *p_ == '-';
    if (negative) ++p_;
    if (p_ == end_ || *p_ < '0' || *p_ > '9') return false;
    const char* digits = p_;
    std::uint64_t v = 0;
    while (p_ != end_ && *p_ >= '0' && *p_ <= '9') {
      const auto d = static_cast<std::uint64_t>(*p_ - '0');
      if (v > (UINT64_MAX - d) / 10) return false;  // beyond uint64: nlohmann makes it a float
      v = v * 10 + d;
      ++p_;
    }
    if (*digits == '0' && p_ - digits > 1) return false;                      // leading zero: invalid
    if (p_ != end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) return false;  // a float
    if (!negative) {
      out = static_cast<nlohmann::json::number_unsigned_t>(v);
      return true;
    }
    if (v == 0 || v > static_cast<std::uint64_t>(INT64_MAX) + 1) return false;  // -0, or a float
    out = static_cast<nlohmann::json::number_integer_t>(v == static_cast<std::uint64_t>(INT64_MAX) + 1
                                                            ? INT64_MIN
                                                            : -static_cast<std::int64_t>(v));
    return true;
  }

  bool object(nlohmann::json& out, int depth) {
    if (depth > kMaxDepth) return false;
    ++p_;
    out = nlohmann::json::object();
    skip_ws();
    if (p_ != end_ && *p_ == '}') {
      ++p_;
      return true;
    }
    while (true) {
      std::string_view key;
      if (p_ == end_ || *p_ != '"' || !string(key)) return false;
      skip_ws();
      if (p_ == end_ || *p_ != ':') return false;
      ++p_;
      skip_ws();
      // A repeated key keeps its last value, as in nlohmann's parser.
      if (!value(out[std::string(key)], depth)) return false;
      skip_ws();
      if (p_ == end_) return false;
      if (*p_ == '}') {
        ++p_;
        return true;
      }
      if (*p_ != ',') return false;
      ++p_;
      skip_ws();
    }
  }

  bool array(nlohmann::json& out, int depth) {
    if (depth > kMaxDepth) return false;
    ++p_;
    out = nlohmann::json::array();
    skip_ws();
    if (p_ != end_ && *p_ == ']') {
      ++p_;
      return true;
    }
    while (true) {
      out.push_back(nullptr);
      if (!value(out.back(), depth)) return false;
      skip_ws();
      if (p_ == end_) return false;
      if (*p_ == ']') {
        ++p_;
        return true;
      }
      if (*p_ != ',') return false;
      ++p_;
      skip_ws();
    }
  }

  const char* p_;
  const char* end_;
};

}  // namespace

bool parse_json_fast(std::string_view body, nlohmann::json& out) {
  FastParser parser(body);
  return parser.document(out);
}

}  // namespace catga::wire
