#pragma once
// JsonCursor: a forward-only reader over JSON text, for the fast decoding
// paths (wire::parse_json_fast; wire::read_fields through the public
// FieldReader, catga/field_reader.hpp). Private to catga::mediator.

#include <cstdint>
#include <string_view>

namespace catga::wire {

// Reads the common shape of message bodies — objects, arrays, ASCII strings
// without escapes, numbers, true, false, null — and answers false to
// anything else (escapes, non-ASCII bytes, invalid text, nesting deeper than
// kMaxDepth). A false answer means "not on the fast path", never "invalid":
// callers then hand the whole text to nlohmann, whose verdict and error
// message count. Positions are not restored after false.
//
//   JsonCursor c(R"({"id":7})");
//   std::string_view key;
//   std::uint64_t id = 0;
//   std::int64_t negative_id = 0;
//   bool negative = false;
//   bool ok = c.object_begin() && c.object_next(true, key) == 1 && c.integer(id, negative_id, negative) &&
//             c.object_next(false, key) == 0 && c.end();
class JsonCursor {
 public:
  static constexpr int kMaxDepth = 64;

  explicit JsonCursor(std::string_view text) noexcept : p_(text.data()), end_(text.data() + text.size()) {
    skip_ws();
  }
  // Resumes reading at `p` (a position() of a cursor over the same text).
  static JsonCursor resume(const char* p, const char* end) noexcept { return JsonCursor(p, end); }
  // Where the next value starts (whitespace skipped).
  const char* position() const noexcept { return p_; }

  // The next value's first character ('\0' at the end of the text).
  char peek() const noexcept { return p_ != end_ ? *p_ : '\0'; }
  // Only whitespace is left.
  bool end() const noexcept { return p_ == end_; }

  // '{' / '['.
  bool object_begin() noexcept { return open('{'); }
  bool array_begin() noexcept { return open('['); }
  // After object_begin (first = true) or a member's value: 1 when a member
  // follows (its key is read, and the ':'), 0 at '}' (consumed), -1 otherwise.
  int object_next(bool first, std::string_view& key) noexcept;
  // After array_begin (first = true) or an element: 1 when an element
  // follows, 0 at ']' (consumed), -1 otherwise.
  int array_next(bool first) noexcept { return next(first, ']'); }

  // A string without escapes or non-ASCII bytes; the view points into the text.
  bool string(std::string_view& out) noexcept;
  bool boolean(bool& out) noexcept;
  bool null() noexcept { return literal("null"); }
  // An integer literal (no fraction or exponent) that fits nlohmann's
  // integer types: non-negative → `u` and negative = false; negative →
  // `i` and negative = true. Beyond 64 bits nlohmann makes a float: false.
  bool integer(std::uint64_t& u, std::int64_t& i, bool& negative) noexcept;
  // Any JSON number, as the double nlohmann's parser would store (correctly
  // rounded); false when out of double's range.
  bool number(double& out) noexcept;
  // Any value of the fast subset.
  bool skip_value() noexcept { return skip(0); }

 private:
  JsonCursor(const char* p, const char* end) noexcept : p_(p), end_(end) {}
  void skip_ws() noexcept {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool open(char c) noexcept {
    if (p_ == end_ || *p_ != c) return false;
    ++p_;
    skip_ws();
    return true;
  }
  bool literal(std::string_view word) noexcept;
  // object_next / array_next without the key: `close` is '}' or ']'.
  int next(bool first, char close) noexcept;
  // The extent of a number literal per JSON's grammar; false if invalid.
  bool number_text(const char*& start, bool& integral) noexcept;
  bool skip(int depth) noexcept;

  const char* p_;
  const char* end_;
};

}  // namespace catga::wire
