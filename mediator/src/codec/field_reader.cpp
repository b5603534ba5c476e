// wire::FieldReader (catga/field_reader.hpp): the public face of JsonCursor
// for the code the CATGA_* macros generate. Each call resumes a cursor at the
// reader's position and stores where it stopped.

#include "catga/field_reader.hpp"

#include "json_cursor_inline.hpp"

namespace catga::wire {
namespace {

template <class Step>
auto step(const char*& p, const char* end, Step&& f) noexcept {
  JsonCursor c = JsonCursor::resume(p, end);
  const auto r = f(c);
  p = c.position();
  return r;
}

}  // namespace

FieldReader::FieldReader(std::string_view text) noexcept
    : p_(JsonCursor(text).position()), end_(text.data() + text.size()) {}

bool FieldReader::object_begin() noexcept {
  return step(p_, end_, [](JsonCursor& c) { return c.object_begin(); });
}
bool FieldReader::array_begin() noexcept {
  return step(p_, end_, [](JsonCursor& c) { return c.array_begin(); });
}
int FieldReader::object_next(bool first, std::string_view& key) noexcept {
  return step(p_, end_, [&](JsonCursor& c) { return c.object_next(first, key); });
}
int FieldReader::array_next(bool first) noexcept {
  return step(p_, end_, [&](JsonCursor& c) { return c.array_next(first); });
}
bool FieldReader::string(std::string_view& out) noexcept {
  return step(p_, end_, [&](JsonCursor& c) { return c.string(out); });
}
bool FieldReader::boolean(bool& out) noexcept {
  return step(p_, end_, [&](JsonCursor& c) { return c.boolean(out); });
}
bool FieldReader::integer(std::uint64_t& u, std::int64_t& i, bool& negative) noexcept {
  return step(p_, end_, [&](JsonCursor& c) { return c.integer(u, i, negative); });
}
bool FieldReader::number(double& out) noexcept {
  return step(p_, end_, [&](JsonCursor& c) { return c.number(out); });
}
bool FieldReader::skip_value() noexcept {
  return step(p_, end_, [](JsonCursor& c) { return c.skip_value(); });
}

}  // namespace catga::wire
