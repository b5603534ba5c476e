// catga::ascii against byte-by-byte definitions: every single-byte change of
// valid input, random words, and every position of the first non-digit.
#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "catga/message_id.hpp"
#include "catga/wire.hpp"
#include "codec/ascii_digits.hpp"  // private to catga::mediator (mediator/src)

namespace {

std::optional<std::uint64_t> plain_hex16(const std::string& s) {
  std::uint64_t v = 0;
  for (const char c : s) {
    unsigned d = 0;
    if (c >= '0' && c <= '9') {
      d = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<unsigned>(c - 'a' + 10);
    } else {
      return std::nullopt;
    }
    v = (v << 4) | d;
  }
  return v;
}

// Every variant this target has, each against the byte loop.
std::optional<std::uint64_t> fast_hex16(const std::string& s) {
  std::uint64_t v = 0;
  const std::optional<std::uint64_t> out =
      catga::ascii::lower_hex16(s.data(), v) ? std::optional<std::uint64_t>(v) : std::nullopt;
  using Variant = bool (*)(const char*, std::uint64_t&) noexcept;
  auto check = [&](Variant variant) {
    std::uint64_t x = 0;
    const bool ok = variant(s.data(), x);
    REQUIRE(ok == out.has_value());
    if (ok) REQUIRE(x == *out);
  };
  check(&catga::ascii::detail::lower_hex16_bytes);
  if constexpr (catga::ascii::detail::kLittle) check(&catga::ascii::detail::lower_hex16_swar);
#if defined(CATGA_ASCII_HAVE_SSE2)
  check(&catga::ascii::detail::lower_hex16_sse2);
#endif
  return out;
}

std::size_t plain_digit_run(const std::string& s) {
  std::size_t n = 0;
  while (n < s.size() && s[n] >= '0' && s[n] <= '9') ++n;
  return n;
}

}  // namespace

TEST_CASE("lower_hex16: the value of 16 lowercase hex digits; anything else in any position is refused") {
  std::mt19937_64 rng(7);
  const std::string hex = "0123456789abcdef";
  for (int round = 0; round < 2'000; ++round) {
    std::string s(16, '0');
    for (auto& c : s) c = hex[rng() % 16];
    REQUIRE(fast_hex16(s) == plain_hex16(s));
    // Every byte value at one position: 22 are accepted, the rest refused.
    const std::size_t at = rng() % 16;
    for (int b = 0; b < 256; ++b) {
      std::string t = s;
      t[at] = static_cast<char>(b);
      CAPTURE(t);
      CAPTURE(b);
      REQUIRE(fast_hex16(t) == plain_hex16(t));
    }
  }
  // Random bytes, and bytes next to the valid ranges.
  const std::string edge = "/09:@AFG`afg\x7f\x80\xff ";
  for (int round = 0; round < 20'000; ++round) {
    std::string s(16, '0');
    for (auto& c : s) c = (round & 1) ? static_cast<char>(rng()) : edge[rng() % edge.size()];
    REQUIRE(fast_hex16(s) == plain_hex16(s));
  }
  CHECK(fast_hex16("0123456789abcdef") == 0x0123456789abcdefULL);
  CHECK(fast_hex16("ffffffffffffffff") == 0xffffffffffffffffULL);
  CHECK_FALSE(fast_hex16("0123456789ABCDEF"));  // the canonical form is lowercase
}

TEST_CASE("decimal8, all_digits8 and digit_run agree with a byte loop") {
  std::mt19937_64 rng(11);
  for (int round = 0; round < 20'000; ++round) {
    std::string s(8, '0');
    for (auto& c : s) c = static_cast<char>('0' + rng() % 10);
    std::uint32_t want = 0;
    for (const char c : s) want = want * 10 + static_cast<std::uint32_t>(c - '0');
    REQUIRE(catga::ascii::decimal8(s.data()) == want);
    REQUIRE(catga::ascii::all_digits8(s.data()));
    const std::size_t at = rng() % 8;
    for (int b = 0; b < 256; ++b) {
      std::string t = s;
      t[at] = static_cast<char>(b);
      CAPTURE(b);
      REQUIRE(catga::ascii::all_digits8(t.data()) == (plain_digit_run(t) == 8));
    }
  }
  CHECK(catga::ascii::decimal8("99999999") == 99'999'999u);
  CHECK(catga::ascii::decimal8("00000000") == 0u);

  // digit_run: the first non-digit at every position of strings of 0-40
  // bytes, with every byte value as that non-digit and random bytes after.
  for (std::size_t len = 0; len <= 40; ++len) {
    for (std::size_t first = 0; first <= len; ++first) {
      for (int b = 0; b < 256; b += (first == len ? 256 : 1)) {
        std::string s(len, '0');
        for (std::size_t i = 0; i < len; ++i) {
          s[i] = i < first ? static_cast<char>('0' + rng() % 10) : static_cast<char>(rng());
        }
        if (first < len) s[first] = static_cast<char>(b);
        CAPTURE(s);
        REQUIRE(catga::ascii::digit_run(s.data(), s.data() + s.size()) == plain_digit_run(s));
      }
    }
  }
}

TEST_CASE("decimal: the value of 0-19 digits, as a byte loop computes it") {
  std::mt19937_64 rng(12);
  for (std::size_t n = 0; n <= 19; ++n) {
    for (int round = 0; round < 2'000; ++round) {
      std::string s(n, '0');
      for (auto& c : s) c = static_cast<char>('0' + rng() % 10);
      std::uint64_t want = 0;
      for (const char c : s) want = want * 10 + static_cast<std::uint64_t>(c - '0');
      CAPTURE(s);
      REQUIRE(catga::ascii::decimal(s.data(), n) == want);
    }
  }
  CHECK(catga::ascii::decimal("9999999999999999999", 19) == 9'999'999'999'999'999'999ULL);
  CHECK(catga::ascii::decimal("123", 0) == 0u);
  CHECK(catga::ascii::decimal("00000000123", 11) == 123u);
}

// The public, out-of-line faces of the readers: wire::read_count (transports'
// counts) and parse_lower_hex_u64 (catga/message_id.hpp).
TEST_CASE("wire::read_count and parse_lower_hex_u64 agree with the private readers") {
  std::uint64_t v = 99;
  CHECK(catga::wire::read_count("42.7", v) == 2);
  CHECK(v == 42u);
  v = 99;
  CHECK(catga::wire::read_count(".7", v) == 0);
  CHECK(v == 99u);  // untouched when there is no digit
  CHECK(catga::wire::read_count("", v) == 0);
  CHECK(catga::wire::read_count("9999999999999999999", v) == 19);
  CHECK(v == 9'999'999'999'999'999'999ULL);
  v = 99;
  CHECK(catga::wire::read_count("12345678901234567890x", v) == 20);
  CHECK(v == 99u);  // 20 digits may not fit: counted, not read
  std::mt19937_64 rng(13);
  for (int round = 0; round < 2'000; ++round) {
    std::string s(rng() % 24, '0');
    for (auto& c : s) c = static_cast<char>(rng() % 4 == 0 ? '.' : '0' + rng() % 10);
    const std::size_t run = plain_digit_run(s);
    std::uint64_t got = 0;
    CAPTURE(s);
    REQUIRE(catga::wire::read_count(s, got) == run);
    if (run > 0 && run <= 19) REQUIRE(got == catga::ascii::decimal(s.data(), run));
  }
  std::uint64_t h = 0;
  CHECK(catga::parse_lower_hex_u64("00000000000000ff", h));
  CHECK(h == 255u);
  CHECK_FALSE(catga::parse_lower_hex_u64("00000000000000FF", h));
}
