#pragma once
// FieldReader: what the code the CATGA_* macros generate (catga/json_fields.hpp,
// wire::read_fields) needs to read a message body. Declarations only: the
// reader itself (JSON scanning, digit tricks) is private to catga::mediator
// (mediator/src/codec/), so no user translation unit compiles it.

#include <cstdint>
#include <string_view>

namespace catga::wire {

// A forward-only reader over JSON text for the common shape of message
// bodies — objects, arrays, ASCII strings without escapes, numbers, true,
// false, null. Every call answers false (or -1) for anything else (escapes,
// non-ASCII bytes, invalid text, nesting deeper than 64): "not on the fast
// path", never "invalid"; callers then give the whole text to nlohmann,
// whose verdict and error message count. The position is not restored after
// false.
//
//   catga::wire::FieldReader r(R"({"id":7})");
//   std::string_view key;
//   std::uint64_t id = 0;
//   std::int64_t negative_id = 0;
//   bool negative = false;
//   bool ok = r.object_begin() && r.object_next(true, key) == 1 && r.integer(id, negative_id, negative) &&
//             r.object_next(false, key) == 0 && r.end();
class FieldReader {
 public:
  explicit FieldReader(std::string_view text) noexcept;

  // '{' / '['.
  bool object_begin() noexcept;
  bool array_begin() noexcept;
  // After object_begin (first = true) or a member's value: 1 when a member
  // follows (its key is read, and the ':'), 0 at '}' (consumed), -1 otherwise.
  int object_next(bool first, std::string_view& key) noexcept;
  // After array_begin (first = true) or an element: 1 when an element
  // follows, 0 at ']' (consumed), -1 otherwise.
  int array_next(bool first) noexcept;

  // A string without escapes or non-ASCII bytes; the view points into the text.
  bool string(std::string_view& out) noexcept;
  bool boolean(bool& out) noexcept;
  // An integer literal (no fraction or exponent) that fits nlohmann's
  // integer types: non-negative → `u` and negative = false; negative →
  // `i` and negative = true.
  bool integer(std::uint64_t& u, std::int64_t& i, bool& negative) noexcept;
  // Any JSON number, as the double nlohmann's parser would store.
  bool number(double& out) noexcept;
  // Any value of the fast subset.
  bool skip_value() noexcept;
  // Only whitespace is left.
  bool end() const noexcept { return p_ == end_; }

 private:
  const char* p_;  // the next value's first character (whitespace skipped)
  const char* end_;
};

}  // namespace catga::wire
