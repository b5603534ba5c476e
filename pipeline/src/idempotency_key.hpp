#pragma once
// Keys of InMemoryIdempotencyStore: a per-process seeded hash, and the key as
// the table compares it (128 bits for a generated message id, else text).
// Private to catga::pipeline.

#include <cstdint>
#include <cstring>
#include <random>
#include <string_view>

#include "catga/message_id.hpp"

namespace catga::idempotency_detail {

// A per-process random seed, so keys chosen by remote senders cannot be
// crafted to collide.
inline std::uint64_t hash_seed() noexcept {
  static const std::uint64_t seed = [] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }();
  return seed;
}

__extension__ typedef unsigned __int128 U128;

// 64x64 -> 128-bit multiply, folded: one instruction on x86-64 and arm64,
// and every input bit reaches every output bit.
inline std::uint64_t fold_mul(std::uint64_t a, std::uint64_t b) noexcept {
  const U128 r = static_cast<U128>(a) * b;
  return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}

inline std::uint64_t read64(const char* p) noexcept {
  std::uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

// Keys are short (a message id is 32 bytes), so a hash taking 16 bytes per
// folded multiply is several times cheaper than std::hash here.
inline std::uint64_t hash_of(std::string_view s) noexcept {
  constexpr std::uint64_t kA = 0x9e3779b97f4a7c15ULL;
  constexpr std::uint64_t kB = 0xd6e8feb86659fd93ULL;
  // The seed is in both factors, so no key can zero one of them on purpose.
  const std::uint64_t seed = hash_seed();
  const char* p = s.data();
  std::size_t n = s.size();
  std::uint64_t h = seed ^ (n * kB);
  for (; n >= 16; p += 16, n -= 16) h = fold_mul(read64(p) ^ h ^ kA, read64(p + 8) ^ seed ^ kB);
  if (n > 0) {
    char tail[16] = {};
    std::memcpy(tail, p, n);
    h = fold_mul(read64(tail) ^ h ^ kA, read64(tail + 8) ^ seed ^ kB);
  }
  return fold_mul(h ^ kA, s.size() ^ 0x8bb84b93962eacc9ULL);
}

// Binary keys (message ids): two folded multiplies, no loop.
inline std::uint64_t hash_of(std::uint64_t hi, std::uint64_t lo) noexcept {
  constexpr std::uint64_t kA = 0x9e3779b97f4a7c15ULL;
  constexpr std::uint64_t kB = 0xd6e8feb86659fd93ULL;
  const std::uint64_t seed = hash_seed();
  return fold_mul(fold_mul(hi ^ seed ^ kA, lo ^ seed ^ kB) ^ kA, 0x8bb84b93962eacc9ULL);
}

// True for exactly 32 lowercase hex digits: the text MessageId gives a binary
// id, held as 128 bits here so the text and binary forms are one key.
inline bool binary_key_text(std::string_view s, std::uint64_t& hi, std::uint64_t& lo) noexcept {
  return s.size() == 32 && parse_lower_hex_u64(s.data(), hi) && parse_lower_hex_u64(s.data() + 16, lo);
}

// A key as the table compares it: 128 bits, or text.
struct Key {
  std::string_view text;  // unused when binary
  std::uint64_t hi = 0;
  std::uint64_t lo = 0;
  bool binary = false;

  static Key of(std::string_view text) noexcept {
    Key k;
    k.binary = binary_key_text(text, k.hi, k.lo);
    if (!k.binary) k.text = text;
    return k;
  }
  std::uint64_t hash() const noexcept { return binary ? hash_of(hi, lo) : hash_of(text); }
};

}  // namespace catga::idempotency_detail
