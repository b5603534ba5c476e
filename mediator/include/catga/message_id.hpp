#pragma once
// MessageId: identifies one message across processes and machines.

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace catga {

namespace detail {
// Per-thread state of the id generator (MessageId::generate): a random high
// half and a counter in the low half; hi == 0 until the thread's first id.
// Trivial and constant-initialised, so reading it inline needs no TLS guard.
struct IdGenState {
  std::uint64_t hi;
  std::uint64_t lo;
};
inline thread_local IdGenState t_id_gen{0, 0};
// Seeds the calling thread's state (message_id.cpp); once per thread.
void seed_id_generator(IdGenState& state) noexcept;

// Per-thread state of random_u64 (trace and span ids); 0 until seeded.
inline thread_local std::uint64_t t_random_state = 0;
// Seeds it from the entropy device (message_id.cpp); once per thread.
void seed_random(std::uint64_t& state) noexcept;

// A uniformly distributed 64-bit number: splitmix64 (passes BigCrush) over a
// per-thread state seeded from std::random_device. Not for secrets; for
// W3C trace and span ids, whose low bits ratio samplers read, so they must
// not count (message ids do). About a nanosecond, no lock.
inline std::uint64_t random_u64() noexcept {
  std::uint64_t& s = t_random_state;
  if (s == 0) [[unlikely]] seed_random(s);
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
// A random id that is not zero (zero is invalid in W3C trace context).
inline std::uint64_t random_nonzero_u64() noexcept {
  const std::uint64_t v = random_u64();
  return v != 0 ? v : 1;
}
}  // namespace detail

// The text of an id, held inline (no allocation). Converts to string_view.
struct IdText {
  std::array<char, 64> chars{};
  std::uint8_t size = 0;

  std::string_view view() const noexcept { return {chars.data(), size}; }
  operator std::string_view() const noexcept { return view(); }  // NOLINT implicit
  std::string str() const { return std::string(view()); }
};

// A message id. Generated ids are 128 random-seeded bits (per-thread random
// base plus a counter: unique across processes and machines with no
// configuration, and cheap: no lock, no allocation, no clock read) printed as
// 32 lowercase hex digits. Ids that arrive from other languages keep their
// text exactly (up to 64 characters) so `Nats-Msg-Id` dedup still works.
//
//   auto id = catga::MessageId::generate();
//   std::string s = id.text().str();          // "4f1c…" (32 hex digits)
//   auto back = catga::MessageId::parse(s);   // == id
class MessageId {
 public:
  static constexpr std::size_t kMaxText = 64;

  // Nil. The text buffer stays uninitialized: ids are made on every dispatch.
  MessageId() noexcept {}  // NOLINT(modernize-use-equals-default)

  // Inline: a TLS read, an increment and two stores (ids are made on every
  // dispatch).
  static MessageId generate() noexcept {
    detail::IdGenState& s = detail::t_id_gen;
    if (s.hi == 0) [[unlikely]] detail::seed_id_generator(s);
    // The low half counts; zero is skipped so span ids taken from it are
    // never the invalid all-zero value.
    if (++s.lo == 0) [[unlikely]] ++s.lo;
    return from_parts(s.hi, s.lo);
  }
  // Any non-empty text of at most kMaxText printable ASCII characters.
  // 32 hex digits parse to the binary form, so generate/print/parse round-trips.
  static std::optional<MessageId> parse(std::string_view text) noexcept;
  // Copies only the text bytes in use (ids are copied on every dispatch).
  MessageId(const MessageId& other) noexcept : hi_(other.hi_), lo_(other.lo_), text_size_(other.text_size_) {
    if (text_size_ != 0) std::memcpy(text_.data(), other.text_.data(), text_size_);
  }
  MessageId& operator=(const MessageId& other) noexcept {
    hi_ = other.hi_;
    lo_ = other.lo_;
    text_size_ = other.text_size_;
    if (text_size_ != 0) std::memmove(text_.data(), other.text_.data(), text_size_);
    return *this;
  }

  static MessageId from_parts(std::uint64_t hi, std::uint64_t lo) noexcept {
    MessageId id;
    id.hi_ = hi;
    id.lo_ = lo;
    return id;
  }

  bool is_nil() const noexcept { return text_size_ == 0 && hi_ == 0 && lo_ == 0; }
  explicit operator bool() const noexcept { return !is_nil(); }
  // True for ids held as 128 bits (generated, or parsed from 32 hex digits).
  bool is_binary() const noexcept { return text_size_ == 0; }
  std::uint64_t hi() const noexcept { return hi_; }
  std::uint64_t lo() const noexcept { return lo_; }

  IdText text() const noexcept;

  friend bool operator==(const MessageId& a, const MessageId& b) noexcept {
    if (a.text_size_ != b.text_size_) return false;
    if (a.text_size_ == 0) return a.hi_ == b.hi_ && a.lo_ == b.lo_;
    return std::memcmp(a.text_.data(), b.text_.data(), a.text_size_) == 0;
  }

 private:
  std::uint64_t hi_ = 0;
  std::uint64_t lo_ = 0;
  std::uint8_t text_size_ = 0;  // 0: binary form
  std::array<char, kMaxText> text_;  // only the first text_size_ bytes are set
};

// Appends `n` bytes as lowercase hex; used for ids and traceparent.
void append_hex(char* out, const unsigned char* bytes, std::size_t n) noexcept;
void append_hex_u64(char* out, std::uint64_t v) noexcept;  // 16 hex digits
// Exactly 16 lowercase hex digits at `p` (the form ids and traceparent use):
// false for anything else. (Out of line: the fast parser is private.)
//
//   std::uint64_t v = 0;
//   bool ok = catga::parse_lower_hex_u64("00000000000000ff", v);   // v == 255
bool parse_lower_hex_u64(const char* p, std::uint64_t& out) noexcept;

}  // namespace catga
