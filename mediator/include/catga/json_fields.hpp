#pragma once
// A message body read straight into, or written straight from, a struct
// declared with CATGA_COMMAND / CATGA_QUERY / CATGA_EVENT / CATGA_STRUCT:
// no JSON DOM in between.

#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "catga/field_reader.hpp"

namespace catga {

// One entry of a struct's field list (what the CATGA_* macros generate).
template <class C, class F>
struct Field {
  std::string_view name;
  F C::*member;
};
template <class C, class F>
constexpr Field<C, F> make_field(std::string_view name, F C::*member) noexcept {
  return {name, member};
}

}  // namespace catga

namespace catga::wire {

std::string dump_json(const nlohmann::json& j);  // catga/wire.hpp

namespace detail {
void catga_fields() = delete;  // ADL only: defined by the CATGA_* macros

template <class T>
concept HasFields = requires(const T* p) { catga_fields(p); };

template <class T>
constexpr auto fields_of() noexcept {
  return catga_fields(static_cast<const T*>(nullptr));
}

template <class T>
struct IsVector : std::false_type {};
template <class T, class A>
struct IsVector<std::vector<T, A>> : std::true_type {};

template <class Fd>
struct FieldType;
template <class C, class F>
struct FieldType<Field<C, F>> {
  using type = F;
};

// Character types are not numbers to every reader of JSON: left to nlohmann.
template <class T>
inline constexpr bool kIsChar = std::is_same_v<T, char> || std::is_same_v<T, wchar_t> ||
                                std::is_same_v<T, char8_t> || std::is_same_v<T, char16_t> ||
                                std::is_same_v<T, char32_t>;

// Calls f(field) for each entry of T's field list, in declaration order.
template <class T, class F>
constexpr void for_each_field(F&& f) {
  std::apply([&](const auto&... fd) { (f(fd), ...); }, fields_of<T>());
}

// T's field positions in nlohmann's key order (its objects are std::maps).
template <class T>
constexpr auto sorted_field_order() {
  constexpr std::size_t n = std::tuple_size_v<decltype(fields_of<T>())>;
  std::array<std::string_view, n> names{};
  std::size_t i = 0;
  for_each_field<T>([&](const auto& fd) { names[i++] = fd.name; });
  std::array<std::size_t, n> order{};
  for (std::size_t k = 0; k < n; ++k) order[k] = k;
  for (std::size_t a = 0; a < n; ++a) {  // insertion sort: constexpr, n is small
    for (std::size_t b = a; b > 0 && names[order[b]] < names[order[b - 1]]; --b) std::swap(order[b], order[b - 1]);
  }
  return order;
}

}  // namespace detail

// The field types the fast paths handle themselves. A struct with any other
// field type (enums, maps, optionals, types with their own from_json, ...) is
// always decoded and encoded by nlohmann. Floating-point fields are read, but
// written by nlohmann (its shortest-form float text is its own).
template <class T, bool ForWrite = false>
constexpr bool fast_codable() noexcept {
  if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, bool>) {
    return true;
  } else if constexpr (std::is_integral_v<T>) {
    return !detail::kIsChar<T>;
  } else if constexpr (std::is_floating_point_v<T>) {
    return !ForWrite;
  } else if constexpr (detail::IsVector<T>::value) {
    return !std::is_same_v<T, std::vector<bool>> && fast_codable<typename T::value_type, ForWrite>();
  } else if constexpr (detail::HasFields<T>) {
    bool all = true;
    detail::for_each_field<T>([&](const auto& fd) {
      all = all && fast_codable<typename detail::FieldType<std::decay_t<decltype(fd)>>::type, ForWrite>();
    });
    return all;
  } else {
    return false;
  }
}

namespace detail {

template <class T>
bool read_value(FieldReader& c, T& out);

template <class T>
bool read_object(FieldReader& c, T& out) {
  constexpr std::size_t n = std::tuple_size_v<decltype(fields_of<T>())>;
  static_assert(n <= 64);
  if (!c.object_begin()) return false;
  std::uint64_t seen = 0;
  std::string_view key;
  for (bool first = true;; first = false) {
    const int r = c.object_next(first, key);
    if (r < 0) return false;
    if (r == 0) break;
    bool matched = false;
    bool ok = true;
    std::size_t index = 0;
    for_each_field<T>([&](const auto& fd) {
      if (!matched && fd.name == key) {
        matched = true;
        ok = read_value(c, out.*(fd.member));  // a repeated key: the last value wins, as in nlohmann
        seen |= std::uint64_t{1} << index;
      }
      ++index;
    });
    if (!matched) ok = c.skip_value();  // nlohmann's from_json ignores other keys too
    if (!ok) return false;
  }
  constexpr std::uint64_t all = n == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n) - 1;
  return seen == all;  // a missing field is nlohmann's error to report
}

template <class T>
bool read_value(FieldReader& c, T& out) {
  if constexpr (std::is_same_v<T, std::string>) {
    std::string_view s;
    if (!c.string(s)) return false;
    out.assign(s);
    return true;
  } else if constexpr (std::is_same_v<T, bool>) {
    return c.boolean(out);
  } else if constexpr (std::is_integral_v<T>) {
    // Out of the field's range: not taken here; the JSON codec then refuses
    // it (catga::detail::read_json_field), never a wrapping cast.
    std::uint64_t u = 0;
    std::int64_t i = 0;
    bool negative = false;
    if (!c.integer(u, i, negative)) return false;
    if (negative) {
      if constexpr (std::is_unsigned_v<T>) {
        return false;
      } else {
        if (i < static_cast<std::int64_t>(std::numeric_limits<T>::min())) return false;
        out = static_cast<T>(i);
      }
    } else {
      if (u > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) return false;
      out = static_cast<T>(u);
    }
    return true;
  } else if constexpr (std::is_floating_point_v<T>) {
    double d = 0;
    if (!c.number(d)) return false;
    out = static_cast<T>(d);  // via double, as nlohmann stores it
    return true;
  } else if constexpr (IsVector<T>::value) {
    if (!c.array_begin()) return false;
    out.clear();
    for (bool first = true;; first = false) {
      const int r = c.array_next(first);
      if (r <= 0) return r == 0;
      if (!read_value(c, out.emplace_back())) return false;
    }
  } else {
    return read_object(c, out);
  }
}

// Appends a string nlohmann would write unescaped; false for anything else.
bool write_plain_string(std::string& out, std::string_view s);

template <class T>
bool write_value(std::string& out, const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    return write_plain_string(out, v);
  } else if constexpr (std::is_same_v<T, bool>) {
    out.append(v ? "true" : "false");
    return true;
  } else if constexpr (std::is_integral_v<T>) {
    char buf[24];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, static_cast<std::size_t>(end - buf));
    return ec == std::errc();
  } else if constexpr (IsVector<T>::value) {
    out.push_back('[');
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (i > 0) out.push_back(',');
      if (!write_value(out, v[i])) return false;
    }
    out.push_back(']');
    return true;
  } else {
    static constexpr auto order = sorted_field_order<T>();
    static constexpr auto fields = fields_of<T>();
    out.push_back('{');
    bool ok = true;
    [&]<std::size_t... K>(std::index_sequence<K...>) {
      ((ok = ok && (out.append(K == 0 ? "\"" : ",\"").append(std::get<order[K]>(fields).name).append("\":"),
                    write_value(out, v.*(std::get<order[K]>(fields).member)))),
       ...);
    }(std::make_index_sequence<order.size()>{});
    out.push_back('}');
    return ok;
  }
}

}  // namespace detail

// Decodes `body` into `out` when it is in the fast subset (see FieldReader)
// and has every field; false leaves the decision (and the error message) to
// nlohmann: parse the body and call get<T>(). Where it returns true, the
// result equals nlohmann's (tests/mediator/json_fields_test.cpp).
//
//   OrderPlaced e;
//   if (!catga::wire::read_fields(body, e)) e = nlohmann::json::parse(body).get<OrderPlaced>();
template <class T>
  requires(detail::HasFields<T> && fast_codable<T>())
bool read_fields(std::string_view body, T& out) {
  FieldReader c(body);
  return detail::read_object(c, out) && c.end();
}

// Appends exactly the text wire::dump_json(nlohmann::json(v)) would give
// (keys in nlohmann's order) when every value is plain — strings without
// characters nlohmann escapes, integers, booleans; otherwise appends nothing
// and returns false.
//
//   std::string body;
//   if (!catga::wire::write_fields(event, body)) body = catga::wire::dump_json(event);
template <class T>
  requires(detail::HasFields<T> && fast_codable<T, true>())
bool write_fields(const T& v, std::string& out) {
  const std::size_t start = out.size();
  if (detail::write_value(out, v)) return true;
  out.resize(start);
  return false;
}

// The JSON body of a message: write_fields where it applies, else nlohmann.
template <class T>
std::string encode_body(const T& v) {
  std::string out;
  if constexpr (requires { write_fields(v, out); }) {
    out.reserve(128);
    if (write_fields(v, out)) return out;
  }
  return dump_json(nlohmann::json(v));
}

}  // namespace catga::wire
