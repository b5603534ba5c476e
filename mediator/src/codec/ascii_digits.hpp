#pragma once
// Reading runs of ASCII digits eight bytes at a time (one 64-bit word per
// step instead of a loop over bytes). Used on the consume path: message ids
// and traceparents (hex), JSON integers and ack-subject numbers (decimal).
// On a big-endian target every function falls back to a byte loop.
//
//   std::uint64_t id = 0;
//   bool ok = catga::ascii::lower_hex16("0123456789abcdef", id);   // id == 0x0123456789abcdef
//   std::uint64_t n = catga::ascii::decimal8("12345678");            // n == 12345678 (8 digits, unchecked)
//   std::size_t k = catga::ascii::digit_run(p, end);                 // how many of [p, end) are '0'..'9' in a row
//   std::uint64_t v = catga::ascii::decimal(p, k);                    // their value (k <= 19)

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace catga::ascii {
namespace detail {

inline constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
inline constexpr std::uint64_t kLow7 = 0x7f7f7f7f7f7f7f7fULL;
inline constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
inline constexpr bool kLittle = std::endian::native == std::endian::little;

inline std::uint64_t load8(const char* p) noexcept {
  std::uint64_t x = 0;
  std::memcpy(&x, p, 8);
  return x;
}

// 0x80 in every byte of `z` that is zero, 0 elsewhere (exact: no carry
// crosses a byte).
constexpr std::uint64_t zero_bytes(std::uint64_t z) noexcept { return ~(((z & kLow7) + kLow7) | z) & kHigh; }

// 0x80 in every byte of `x` that is '0'..'9'. Exact for every byte up to and
// including the first one that is not a digit (the +6 may carry out of a
// byte of 0xfa or more, which is not a digit itself).
constexpr std::uint64_t digit_bytes(std::uint64_t x) noexcept {
  const std::uint64_t high_nibble_3 = zero_bytes((x & (kOnes * 0xf0)) ^ (kOnes * 0x30));
  const std::uint64_t low_nibble_le_9 = zero_bytes(((x + kOnes * 0x06) & (kOnes * 0xf0)) ^ (kOnes * 0x30));
  return high_nibble_3 & low_nibble_le_9;
}

}  // namespace detail

constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// The value of exactly 8 decimal digits at p (not checked: see all_digits8).
// Pairs, then quads, then the octet are combined in place; no product
// overflows its lane.
inline std::uint32_t decimal8(const char* p) noexcept {
  if constexpr (!detail::kLittle) {
    std::uint32_t v = 0;
    for (int i = 0; i < 8; ++i) v = v * 10 + static_cast<std::uint32_t>(p[i] - '0');
    return v;
  } else {
    std::uint64_t x = detail::load8(p) - detail::kOnes * '0';        // digit i in byte i
    x = (x * 10 + (x >> 8)) & 0x00ff00ff00ff00ffULL;                   // 2-digit values in 16-bit lanes
    x = (x * 100 + (x >> 16)) & 0x0000ffff0000ffffULL;                 // 4-digit values in 32-bit lanes
    return static_cast<std::uint32_t>(x * 10000 + (x >> 32));          // the low lane: all 8
  }
}

// The value of the n digits at p (n at most 19, all '0'..'9' as digit_run
// counts them; not checked): eight per step, then one at a time.
inline std::uint64_t decimal(const char* p, std::size_t n) noexcept {
  std::uint64_t v = 0;
  for (; n >= 8; n -= 8, p += 8) v = v * 100'000'000 + decimal8(p);
  for (; n > 0; --n, ++p) v = v * 10 + static_cast<std::uint64_t>(*p - '0');
  return v;
}

// True when the 8 bytes at p are all '0'..'9'.
inline bool all_digits8(const char* p) noexcept {
  if constexpr (!detail::kLittle) {
    for (int i = 0; i < 8; ++i) {
      if (!is_digit(p[i])) return false;
    }
    return true;
  } else {
    return detail::digit_bytes(detail::load8(p)) == detail::kHigh;
  }
}

// How many characters from p on (before end) are digits in a row.
inline std::size_t digit_run(const char* p, const char* end) noexcept {
  const char* const start = p;
  if constexpr (detail::kLittle) {
    while (end - p >= 8) {
      const std::uint64_t not_digit = ~detail::digit_bytes(detail::load8(p)) & detail::kHigh;
      if (not_digit != 0) return static_cast<std::size_t>(p - start) + (std::countr_zero(not_digit) >> 3);
      p += 8;
    }
  }
  while (p != end && is_digit(*p)) ++p;
  return static_cast<std::size_t>(p - start);
}

namespace detail {

// lower_hex16, one byte at a time (any target).
inline bool lower_hex16_bytes(const char* p, std::uint64_t& out) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < 16; ++i) {
    const char c = p[i];
    unsigned d = 0;
    if (is_digit(c)) {
      d = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<unsigned>(c - 'a' + 10);
    } else {
      return false;
    }
    v = (v << 4) | d;
  }
  out = v;
  return true;
}

// lower_hex16, eight bytes per step (little-endian targets).
inline bool lower_hex16_swar(const char* p, std::uint64_t& out) noexcept {
  std::uint64_t v = 0;
  for (int half = 0; half < 2; ++half) {
    const std::uint64_t x = load8(p + 8 * half);
    const std::uint64_t low = x & (kOnes * 0x0f);
    // A digit: high nibble 3, low nibble 0-9. A letter: high nibble 6,
    // low nibble 1-6. (Nibble sums stay below 0x20: no carry between bytes.)
    const std::uint64_t digit =
        zero_bytes((x & (kOnes * 0xf0)) ^ (kOnes * 0x30)) & ~(((low + kOnes * 0x06) & (kOnes * 0x10)) << 3);
    const std::uint64_t letter = zero_bytes((x & (kOnes * 0xf0)) ^ (kOnes * 0x60)) &
                                 (((low + kOnes * 0x0f) & (kOnes * 0x10)) << 3) &
                                 ~(((low + kOnes * 0x09) & (kOnes * 0x10)) << 3);
    if ((digit | letter) != kHigh) return false;
    std::uint64_t n = low + ((x >> 6) & kOnes) * 9;             // nibble i in byte i (letters +9)
    n = ((n << 4) | (n >> 8)) & 0x00ff00ff00ff00ffULL;          // byte pairs in 16-bit lanes
    n = ((n << 8) | (n >> 16)) & 0x0000ffff0000ffffULL;         // quads in 32-bit lanes
    v = (v << 32) | (((n << 16) | (n >> 32)) & 0xffffffffULL);  // first digit on top
  }
  out = v;
  return true;
}

#if defined(__SSE2__) && defined(__x86_64__)
#define CATGA_ASCII_HAVE_SSE2 1
// lower_hex16, all 16 bytes in one SSE2 register (x86-64).
inline bool lower_hex16_sse2(const char* p, std::uint64_t& out) noexcept {
  // digit: c - '0' <= 9; letter: c - 'a' <= 5 (unsigned, saturating).
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i d = _mm_sub_epi8(x, _mm_set1_epi8('0'));
  const __m128i l = _mm_sub_epi8(x, _mm_set1_epi8('a'));
  const __m128i is_d = _mm_cmpeq_epi8(_mm_subs_epu8(d, _mm_set1_epi8(9)), _mm_setzero_si128());
  const __m128i is_l = _mm_cmpeq_epi8(_mm_subs_epu8(l, _mm_set1_epi8(5)), _mm_setzero_si128());
  if (_mm_movemask_epi8(_mm_or_si128(is_d, is_l)) != 0xffff) return false;
  const __m128i n = _mm_or_si128(_mm_and_si128(is_d, d), _mm_andnot_si128(is_d, _mm_add_epi8(l, _mm_set1_epi8(10))));
  // Byte 2k of each 16-bit lane becomes n[2k] << 4 | n[2k+1]; the eight
  // pair bytes are packed first pair first, so the number is byte-swapped.
  const __m128i pairs =
      _mm_and_si128(_mm_or_si128(_mm_slli_epi16(n, 4), _mm_srli_epi16(n, 8)), _mm_set1_epi16(0x00ff));
  out = __builtin_bswap64(static_cast<std::uint64_t>(_mm_cvtsi128_si64(_mm_packus_epi16(pairs, pairs))));
  return true;
}
#endif

}  // namespace detail

// The value of the 16 lowercase hex digits at p; false (out unspecified)
// when any of them is not 0-9 or a-f.
inline bool lower_hex16(const char* p, std::uint64_t& out) noexcept {
#if defined(CATGA_ASCII_HAVE_SSE2)
  return detail::lower_hex16_sse2(p, out);
#else
  if constexpr (detail::kLittle) {
    return detail::lower_hex16_swar(p, out);
  } else {
    return detail::lower_hex16_bytes(p, out);
  }
#endif
}

}  // namespace catga::ascii
