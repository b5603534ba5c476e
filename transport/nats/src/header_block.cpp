#include "header_block.hpp"

#include <bit>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace catga::nats::detail {
namespace {

constexpr std::string_view kPrefix = "NATS/1.0";
constexpr std::string_view kEnd = "\r\n\r\n";

// isspace() in the "C" locale, which nats.c's trimming uses.
constexpr bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// Header name characters: visible ASCII except ':'. Names with spaces or
// control characters are left to nats.c (its parser keeps them, with odd
// results; no producer catga knows sends them).
constexpr auto kNameChar = [] {
  struct Table {
    bool yes[256];
  } t{};
  for (int c = 0; c < 256; ++c) t.yes[c] = c > ' ' && c < 0x7f && c != ':';
  return t;
}();

// The first byte from p on (before end) that is not a name character.
const char* skip_name(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
  while (end - p >= 16) {
    // Signed compare: below 0x21 are space, control characters and, as
    // negative bytes, everything from 0x80.
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i stop = _mm_or_si128(_mm_cmplt_epi8(x, _mm_set1_epi8(0x21)),
                                      _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(0x7f)),
                                                   _mm_cmpeq_epi8(x, _mm_set1_epi8(':'))));
    if (const int mask = _mm_movemask_epi8(stop); mask != 0) return p + std::countr_zero(static_cast<unsigned>(mask));
    p += 16;
  }
#endif
  while (p != end && kNameChar.yes[static_cast<unsigned char>(*p)]) ++p;
  return p;
}

// The first '\r' from p on; one lies before end (the block ends in CRLF).
const char* find_cr(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
  while (end - p >= 16) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    if (const int mask = _mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8('\r'))); mask != 0) {
      return p + std::countr_zero(static_cast<unsigned>(mask));
    }
    p += 16;
  }
#endif
  return static_cast<const char*>(std::memchr(p, '\r', static_cast<std::size_t>(end - p)));
}

}  // namespace

bool is_header_name(std::string_view name) noexcept {
  if (name.empty()) return false;
  for (const char c : name) {
    if (!kNameChar.yes[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

void HeaderBlock::parse(std::string_view block) noexcept {
  valid_ = false;
  count_ = 0;
  if (block.size() < kPrefix.size() + kEnd.size() || !block.starts_with(kPrefix) || !block.ends_with(kEnd)) return;
  const char* p = block.data() + kPrefix.size();
  const char* const last = block.data() + block.size() - 2;  // the empty line that ends the block
  // The status line: "NATS/1.0" and spaces only. A status code ("NATS/1.0
  // 503") becomes Status/Description headers in nats.c: left to it.
  while (*p == ' ') ++p;
  if (p[0] != '\r' || p[1] != '\n') return;
  p += 2;
  // One pass per line: name, ':', value up to CRLF. (The block ends with
  // "\r\n\r\n", so every read below stays inside it.)
  while (p < last) {
    const char* const name = p;
    p = skip_name(p, last + 2);
    if (p == name || *p != ':') return;  // empty name, folded line, odd name, no colon
    const std::string_view key(name, static_cast<std::size_t>(p - name));
    ++p;
    // nats.c skips any whitespace before the value; CR or LF there would
    // make it look for the value on the next line: left to nats.c.
    while (*p == ' ' || *p == '\t' || *p == '\v' || *p == '\f') ++p;
    if (*p == '\r' || *p == '\n') return;
    const char* const value = p;
    // Up to the next CRLF (a lone CR or LF stays in the value, as in nats.c);
    // the block's final CRLF CRLF bounds the search.
    while (true) {
      p = find_cr(p, last + 2);
      if (p[1] == '\n') break;
      ++p;
    }
    const char* value_end = p;
    while (is_space(value_end[-1])) --value_end;  // stops at the value's first character
    if (count_ == kMaxFields) return;
    fields_[count_++] = {key, std::string_view(value, static_cast<std::size_t>(value_end - value))};
    p += 2;
  }
  valid_ = p == last;
  if (!valid_) count_ = 0;
}

}  // namespace catga::nats::detail
