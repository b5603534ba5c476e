#pragma once
// JsonCursor's member definitions, inline: each user (json_fast.cpp,
// field_reader.cpp) compiles them into its own code, so a FieldReader call
// is one call, not a call to a call (bench_codec: read_fields took twice as
// long with the cursor out of line behind FieldReader). Private to
// catga::mediator.

#include "json_cursor.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <system_error>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "ascii_digits.hpp"

namespace catga::wire {
namespace cursor_detail {

// 1 for the bytes that end the fast scan of a string: '"', '\\', control
// characters and every non-ASCII byte (UTF-8 is left to nlohmann, which
// validates it).
inline constexpr auto kStringStop = [] {
  struct Table {
    bool stop[256];
  } t{};
  for (int c = 0; c < 256; ++c) t.stop[c] = c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
  return t;
}();

inline constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

}  // namespace cursor_detail

inline bool JsonCursor::literal(std::string_view word) noexcept {
  if (static_cast<std::size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) return false;
  p_ += word.size();
  skip_ws();
  return true;
}

inline int JsonCursor::next(bool first, char close) noexcept {
  if (p_ == end_) return -1;
  if (*p_ == close) {
    ++p_;
    skip_ws();
    return 0;
  }
  if (!first) {
    if (*p_ != ',') return -1;
    ++p_;
    skip_ws();
  }
  return 1;
}

inline int JsonCursor::object_next(bool first, std::string_view& key) noexcept {
  const int r = next(first, '}');
  if (r != 1) return r;
  if (p_ == end_ || *p_ != '"' || !string(key)) return -1;
  if (p_ == end_ || *p_ != ':') return -1;
  ++p_;
  skip_ws();
  return 1;
}

inline bool JsonCursor::string(std::string_view& out) noexcept {
  if (p_ == end_ || *p_ != '"') return false;
  const char* start = ++p_;
  // Sixteen (SSE2) or eight bytes at a time while none of them can stop the
  // scan (the usual payload is long plain text), then byte by byte. Once a
  // 16-byte step has found the stop, the 8-byte steps are skipped.
  bool found = false;
#if defined(__SSE2__)
  while (end_ - p_ >= 16) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p_));
    // Signed compare: below 0x20 are the control characters and, as
    // negative bytes, everything from 0x80.
    const __m128i stop =
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')), _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))),
                     _mm_cmplt_epi8(x, _mm_set1_epi8(0x20)));
    if (const int mask = _mm_movemask_epi8(stop); mask != 0) {
      p_ += std::countr_zero(static_cast<unsigned>(mask));
      found = true;
      break;
    }
    p_ += 16;
  }
#endif
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHighs = 0x8080808080808080ULL;
  while (!found && end_ - p_ >= 8) {
    std::uint64_t x = 0;
    std::memcpy(&x, p_, 8);
    const std::uint64_t quote = x ^ (kOnes * '"');
    const std::uint64_t backslash = x ^ (kOnes * '\\');
    // Set for a zero byte / a byte below 0x20 / a byte of 0x80 or more
    // (never missed; a false alarm only falls through to the byte loop).
    const std::uint64_t stop = ((quote - kOnes) & ~quote) | ((backslash - kOnes) & ~backslash) |
                               ((x - kOnes * 0x20) & ~x) | x;
    if ((stop & kHighs) != 0) break;
    p_ += 8;
  }
  while (p_ != end_ && !cursor_detail::kStringStop.stop[static_cast<unsigned char>(*p_)]) ++p_;
  if (p_ == end_ || *p_ != '"') return false;
  out = std::string_view(start, static_cast<std::size_t>(p_ - start));
  ++p_;
  skip_ws();
  return true;
}

inline bool JsonCursor::boolean(bool& out) noexcept {
  if (literal("true")) {
    out = true;
    return true;
  }
  if (literal("false")) {
    out = false;
    return true;
  }
  return false;
}

inline bool JsonCursor::number_text(const char*& start, bool& integral) noexcept {
  start = p_;
  if (p_ != end_ && *p_ == '-') ++p_;
  if (p_ == end_ || !cursor_detail::is_digit(*p_)) return false;
  if (*p_ == '0') {
    ++p_;
  } else {
    p_ += ascii::digit_run(p_, end_);
  }
  integral = true;
  if (p_ != end_ && *p_ == '.') {
    integral = false;
    ++p_;
    if (p_ == end_ || !cursor_detail::is_digit(*p_)) return false;
    while (p_ != end_ && cursor_detail::is_digit(*p_)) ++p_;
  }
  if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
    integral = false;
    ++p_;
    if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
    if (p_ == end_ || !cursor_detail::is_digit(*p_)) return false;
    while (p_ != end_ && cursor_detail::is_digit(*p_)) ++p_;
  }
  return true;
}

inline bool JsonCursor::integer(std::uint64_t& u, std::int64_t& i, bool& negative) noexcept {
  const char* start = nullptr;
  bool integral = false;
  if (!number_text(start, integral) || !integral) return false;
  negative = *start == '-';
  const char* d = start + (negative ? 1 : 0);
  // Up to 19 digits cannot overflow (eight at a time, then one by one); the
  // checked loop takes the rest.
  const auto unchecked = static_cast<std::size_t>(std::min<std::ptrdiff_t>(p_ - d, 19));
  std::uint64_t v = ascii::decimal(d, unchecked);
  for (d += unchecked; d != p_; ++d) {
    const auto digit = static_cast<std::uint64_t>(*d - '0');
    if (v > (UINT64_MAX - digit) / 10) return false;  // beyond uint64: nlohmann makes it a float
    v = v * 10 + digit;
  }
  skip_ws();
  if (!negative) {
    u = v;
    return true;
  }
  // -0 is a float in nlohmann's parser; below INT64_MIN too.
  if (v == 0 || v > static_cast<std::uint64_t>(INT64_MAX) + 1) return false;
  i = v == static_cast<std::uint64_t>(INT64_MAX) + 1 ? INT64_MIN : -static_cast<std::int64_t>(v);
  return true;
}

inline bool JsonCursor::number(double& out) noexcept {
  const char* start = nullptr;
  bool integral = false;
  if (!number_text(start, integral)) return false;
  if (integral) {
    // nlohmann stores an integer literal as an integer, then converts.
    p_ = start;
    std::uint64_t u = 0;
    std::int64_t i = 0;
    bool negative = false;
    if (!integer(u, i, negative)) return false;
    out = negative ? static_cast<double>(i) : static_cast<double>(u);
    return true;
  }
  // from_chars rounds correctly, as glibc's strtod (nlohmann's) does; out of
  // range it fails where nlohmann would report an overflow (or underflow).
  const auto [end, ec] = std::from_chars(start, p_, out);
  if (ec != std::errc() || end != p_) return false;
  skip_ws();
  return true;
}

inline bool JsonCursor::skip(int depth) noexcept {
  if (p_ == end_) return false;
  switch (*p_) {
    case '{': {
      if (depth >= kMaxDepth) return false;
      object_begin();
      std::string_view key;
      for (bool first = true;; first = false) {
        const int r = object_next(first, key);
        if (r <= 0) return r == 0;
        if (!skip(depth + 1)) return false;
      }
    }
    case '[': {
      if (depth >= kMaxDepth) return false;
      array_begin();
      for (bool first = true;; first = false) {
        const int r = array_next(first);
        if (r <= 0) return r == 0;
        if (!skip(depth + 1)) return false;
      }
    }
    case '"': {
      std::string_view s;
      return string(s);
    }
    case 't': return literal("true");
    case 'f': return literal("false");
    case 'n': return literal("null");
    default: {
      double ignored = 0;  // read, so that an overflowing number is not skipped over
      return number(ignored);
    }
  }
}

}  // namespace catga::wire
