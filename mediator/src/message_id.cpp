#include "catga/message_id.hpp"

#include <unistd.h>

#include <array>
#include <chrono>
#include <random>
#include <thread>

#include "codec/ascii_digits.hpp"

namespace catga {
namespace {

std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

constexpr char kHex[] = "0123456789abcdef";

// Two lowercase hex digits per byte value: one table load per byte.
constexpr std::array<char, 512> kHexPairs = [] {
  std::array<char, 512> t{};
  for (int i = 0; i < 256; ++i) {
    t[2 * i] = kHex[i >> 4];
    t[2 * i + 1] = kHex[i & 15];
  }
  return t;
}();

}  // namespace

// Per-thread generator state: a random 128-bit base, then a counter in the
// low half. Two threads (anywhere) collide only if their random high halves
// match: probability ~2^-64 per pair. Seeding is kept out of the
// thread_local's initialiser so the variable stays trivial: no TLS init
// guard per id.
void detail::seed_id_generator(IdGenState& s) noexcept {
  std::uint64_t seed = 0;
  try {
    std::random_device rd;
    seed = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  } catch (...) {
    // No entropy device: fall back to time, pid and thread identity.
  }
  seed ^= static_cast<std::uint64_t>(std::chrono::high_resolution_clock::now().time_since_epoch().count());
  seed ^= static_cast<std::uint64_t>(::getpid()) << 48;
  seed ^= std::hash<std::thread::id>{}(std::this_thread::get_id());
  s.hi = splitmix64(seed);
  s.lo = splitmix64(seed);
  if (s.hi == 0) s.hi = 1;
}

void detail::seed_random(std::uint64_t& state) noexcept {
  std::uint64_t seed = 0;
  try {
    std::random_device rd;
    seed = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  } catch (...) {
    // No entropy device: time, pid and thread identity below.
  }
  seed ^= static_cast<std::uint64_t>(std::chrono::high_resolution_clock::now().time_since_epoch().count()) * 31;
  seed ^= static_cast<std::uint64_t>(::getpid()) << 40;
  seed ^= std::hash<std::thread::id>{}(std::this_thread::get_id()) << 1;
  // Through the mixer once, so a weak seed does not show in the first ids.
  state = splitmix64(seed);
  if (state == 0) state = 0x9e3779b97f4a7c15ULL;
}

void append_hex(char* out, const unsigned char* bytes, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) std::memcpy(out + 2 * i, &kHexPairs[2 * bytes[i]], 2);
}

void append_hex_u64(char* out, std::uint64_t v) noexcept {
  for (int i = 7; i >= 0; --i) {
    std::memcpy(out + 2 * i, &kHexPairs[2 * (v & 0xff)], 2);
    v >>= 8;
  }
}


std::optional<MessageId> MessageId::parse(std::string_view text) noexcept {
  if (text.size() == 32) {
    // Only the canonical lowercase form maps to binary, so text round-trips.
    // (Lowercase hex is printable: the check below is not needed for it.)
    std::uint64_t hi = 0, lo = 0;
    if (ascii::lower_hex16(text.data(), hi) && ascii::lower_hex16(text.data() + 16, lo) && (hi != 0 || lo != 0)) {
      return from_parts(hi, lo);
    }
  }
  if (text.empty() || text.size() > kMaxText) return std::nullopt;
  for (char c : text) {
    if (c <= ' ' || c > '~') return std::nullopt;
  }
  MessageId id;
  id.text_size_ = static_cast<std::uint8_t>(text.size());
  std::memcpy(id.text_.data(), text.data(), text.size());
  return id;
}

IdText MessageId::text() const noexcept {
  IdText out;
  if (text_size_ != 0) {
    std::memcpy(out.chars.data(), text_.data(), text_size_);
    out.size = text_size_;
  } else if (hi_ != 0 || lo_ != 0) {
    append_hex_u64(out.chars.data(), hi_);
    append_hex_u64(out.chars.data() + 16, lo_);
    out.size = 32;
  }
  return out;
}

}  // namespace catga
