#pragma once
// Declaring messages: kind, wire name, QoS and JSON codec, one line per type.

#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

#include "catga/json_fields.hpp"

namespace catga {

enum class MessageKind { command, query, event };

// Delivery guarantee of a message type on a transport (see docs/guarantees.md).
enum class QoS { at_most_once, at_least_once, exactly_once };

std::string_view to_string(MessageKind kind) noexcept;
std::string_view to_string(QoS qos) noexcept;

// Kind tags: what a declaration says a type is.
template <class R>
struct CommandTag {
  using result_type = R;
  static constexpr MessageKind kind = MessageKind::command;
};
template <class R>
struct QueryTag {
  using result_type = R;
  static constexpr MessageKind kind = MessageKind::query;
};
struct EventTag {
  using result_type = void;
  static constexpr MessageKind kind = MessageKind::event;
};

// What the declaration macros return from the ADL hook `catga_message`.
template <class Tag>
struct Declaration {
  using tag = Tag;
  std::string_view name;
};

namespace detail {
void catga_message() = delete;  // ADL only: found in the message's namespace
void catga_qos() = delete;
void catga_version() = delete;
void catga_ordering_key() = delete;

// The text of an ordering key field: a string as it is, a number in decimal.
inline std::string ordering_key_text(std::string_view v) { return std::string(v); }
template <class N>
  requires std::is_arithmetic_v<N>
std::string ordering_key_text(N v) {
  return std::to_string(v);
}

template <class T>
concept Declared = requires(const T* p) {
  { catga_message(p).name } -> std::convertible_to<std::string_view>;
  typename decltype(catga_message(p))::tag;
};
template <class T>
concept HasQoS = requires(const T* p) {
  { catga_qos(p) } -> std::same_as<QoS>;
};
template <class T>
concept HasOrderingKey = requires(const T* p) {
  { catga_ordering_key(p) } -> std::convertible_to<std::string>;
};
template <class T>
concept HasVersion = requires(const T* p) {
  { catga_version(p) } -> std::same_as<int>;
};
}  // namespace detail

// A type declared with one of the CATGA_* macros below.
template <class T>
concept Message = std::is_class_v<T> && detail::Declared<T>;

template <Message T>
using message_tag_t = typename decltype(catga_message(static_cast<const T*>(nullptr)))::tag;

// The result type of a command or query (void for events and plain commands).
template <Message T>
using result_t = typename message_tag_t<T>::result_type;

template <Message T>
inline constexpr MessageKind message_kind_v = message_tag_t<T>::kind;

template <class T>
concept Command = Message<T> && message_kind_v<T> == MessageKind::command;
template <class T>
concept Query = Message<T> && message_kind_v<T> == MessageKind::query;
template <class T>
concept Event = Message<T> && message_kind_v<T> == MessageKind::event;
// Something answered by exactly one handler.
template <class T>
concept Request = Command<T> || Query<T>;

template <Message T>
constexpr std::string_view message_name() noexcept {
  return catga_message(static_cast<const T*>(nullptr)).name;
}

template <Message T>
constexpr QoS message_qos() noexcept {
  if constexpr (detail::HasQoS<T>) {
    return catga_qos(static_cast<const T*>(nullptr));
  } else {
    return QoS::at_least_once;
  }
}

// The version of T's body this build writes (CATGA_VERSION; 1 when not
// declared). Sent as the Catga-Message-Version header when above 1.
template <Message T>
constexpr int message_version() noexcept {
  if constexpr (detail::HasVersion<T>) {
    return catga_version(static_cast<const T*>(nullptr));
  } else {
    return 1;
  }
}

template <class T>
concept JsonEncodable = std::is_constructible_v<nlohmann::json, const T&>;
template <class T>
concept JsonDecodable = nlohmann::detail::has_from_json<nlohmann::json, T>::value;
template <class T>
concept JsonCodable = JsonEncodable<T> && JsonDecodable<T>;

// Runtime description of a message type, shared by every mediator. Behaviors
// and transports see messages through it without knowing their C++ type.
struct MessageInfo {
  std::string_view name;
  MessageKind kind;
  QoS qos;
  std::size_t slot;  // dense index, used by mediators to find handlers
  bool has_result;   // false for events and commands without result
  // Message codec; nullptr when the type has no JSON codec.
  void (*encode)(nlohmann::json& out, const void* message);
  // Codec of the result, stored in a std::optional<result_t<T>>; nullptr when
  // there is no result or it has no JSON codec.
  void (*encode_result)(nlohmann::json& out, const void* optional_result);
  bool (*decode_result)(const nlohmann::json& in, void* optional_result);
  // The message's JSON body (wire::encode_body: the same text as
  // dump_json of `encode`'s value); nullptr when `encode` is.
  std::string (*encode_body)(const void* message);
  // The body's version (message_version<T>(): CATGA_VERSION, else 1).
  int version = 1;
  // The message's ordering key (CATGA_ORDERING_KEY); nullptr for types
  // without one. Keyed events travel on a partition subject and can be
  // consumed in order per key (Mediator::subscribe_ordered).
  std::string (*ordering_key)(const void* message) = nullptr;

  bool keyed() const noexcept { return ordering_key != nullptr; }
};

namespace detail {
std::size_t next_message_slot() noexcept;

template <class T>
MessageInfo make_message_info() noexcept {
  using R = result_t<T>;
  MessageInfo info{message_name<T>(), message_kind_v<T>, message_qos<T>(), next_message_slot(),
                   !std::is_void_v<R>, nullptr, nullptr, nullptr, nullptr, message_version<T>()};
  if constexpr (HasOrderingKey<T>) {
    info.ordering_key = [](const void* m) -> std::string { return catga_ordering_key(static_cast<const T*>(m)); };
  }
  if constexpr (JsonEncodable<T>) {
    info.encode = [](nlohmann::json& out, const void* m) { out = *static_cast<const T*>(m); };
    info.encode_body = [](const void* m) { return wire::encode_body(*static_cast<const T*>(m)); };
  }
  if constexpr (!std::is_void_v<R>) {
    if constexpr (JsonCodable<R>) {
      info.encode_result = [](nlohmann::json& out, const void* r) {
        out = **static_cast<const std::optional<R>*>(r);
      };
      info.decode_result = [](const nlohmann::json& in, void* r) {
        try {
          static_cast<std::optional<R>*>(r)->emplace(in.get<R>());
          return true;
        } catch (const std::exception&) {
          return false;
        }
      };
    }
  }
  return info;
}
}  // namespace detail

// The description of T. The first call assigns T its slot.
template <Message T>
const MessageInfo& message_info() noexcept {
  static const MessageInfo info = detail::make_message_info<T>();
  return info;
}

}  // namespace catga

// ---------------------------------------------------------------------------
// Declaration macros. Use them at namespace scope, in the namespace of the
// type, right after the struct. The wire name is the type's name as written.
//
//   struct PlaceOrder { std::string customer; double amount; };
//   CATGA_COMMAND(PlaceOrder, std::string, customer, amount)   // → Result<std::string>
//
//   struct Ship { std::string order_id; };
//   CATGA_COMMAND(Ship, void, order_id)                        // → Status
//
//   struct GetOrder { std::string order_id; };
//   CATGA_QUERY(GetOrder, OrderView, order_id)
//
//   struct OrderPlaced { std::string order_id; };
//   CATGA_EVENT(OrderPlaced, order_id)
//   CATGA_QOS(OrderPlaced, catga::QoS::exactly_once)          // optional
//   CATGA_VERSION(OrderPlaced, 2)                             // optional, see below
//
// CATGA_MESSAGE declares kind and name only, for types with a hand-written
// codec, no fields, or a wire name that differs from the C++ name:
//
//   struct Ping {};
//   CATGA_MESSAGE(Ping, catga::EventTag, "Ping")
//   inline void to_json(nlohmann::json& j, const Ping&) { j = nlohmann::json::object(); }
//   inline void from_json(const nlohmann::json&, Ping&) {}
// ---------------------------------------------------------------------------

namespace catga::detail {

// Where a value sits in a message, for error messages: field 'lines[2].qty'.
// A chain of links on the stack, turned into text only when a value fails.
struct JsonPath {
  const JsonPath* parent = nullptr;
  const char* name = nullptr;        // a field
  const std::string* key = nullptr;  // or a map key
  std::size_t index = 0;             // or an array index

  std::string text() const {
    std::string out = parent != nullptr ? parent->text() : std::string();
    if (name != nullptr) {
      if (!out.empty()) out += '.';
      out += name;
    } else if (key != nullptr) {
      out += "[\"" + *key + "\"]";
    } else {
      out += "[" + std::to_string(index) + "]";
    }
    return out;
  }
};

template <class T>
struct IsOptional : std::false_type {};
template <class T>
struct IsOptional<std::optional<T>> : std::true_type {};

// std::map / std::unordered_map with string keys (JSON objects).
template <class T>
concept StringKeyedMap = requires { typename T::key_type; typename T::mapped_type; } &&
                         std::is_same_v<typename T::key_type, std::string>;

// True for the types read_json_value checks itself: integers (not bool), and
// vectors, optionals and string-keyed maps that hold them at any depth.
// Everything else is read by nlohmann as it is (a CATGA_STRUCT element by its
// own checked from_json).
template <class T>
constexpr bool has_checked_integers() noexcept {
  if constexpr (std::is_integral_v<T>) {
    return !std::is_same_v<T, bool>;
  } else if constexpr (wire::detail::IsVector<T>::value) {
    return !std::is_same_v<T, std::vector<bool>> && has_checked_integers<typename T::value_type>();
  } else if constexpr (IsOptional<T>::value) {
    return has_checked_integers<typename T::value_type>();
  } else if constexpr (StringKeyedMap<T>) {
    return has_checked_integers<typename T::mapped_type>();
  } else {
    return false;
  }
}

// Reads `v` into `out` as nlohmann's get_to would, except that integers are
// range-checked: a value that does not fit (1e46 or 2^31 for an int) is an
// error naming `path`, never an out-of-range conversion (undefined behaviour
// in nlohmann's get<int> of a float, a silent wrap of an unsigned); a float
// with a fraction for an integer is an error too. Integers inside vectors,
// optionals and string-keyed maps are checked the same way; a value of the
// wrong JSON type is left to nlohmann, so its error is nlohmann's.
template <class T>
void read_json_value(const nlohmann::json& v, T& out, const JsonPath& path) {
  if constexpr (!has_checked_integers<T>()) {
    v.get_to(out);
  } else if constexpr (std::is_integral_v<T>) {
    auto fail = [&] {
      throw std::out_of_range("field '" + path.text() + "': " + v.dump() + " is not an integer of the field's range");
    };
    if (v.is_number_unsigned()) {
      const auto u = v.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) fail();
      out = static_cast<T>(u);
    } else if (v.is_number_integer()) {
      const auto i = v.get<std::int64_t>();
      if constexpr (std::is_unsigned_v<T>) {
        if (i < 0 || static_cast<std::uint64_t>(i) > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) fail();
      } else {
        if (i < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
            i > static_cast<std::int64_t>(std::numeric_limits<T>::max())) {
          fail();
        }
      }
      out = static_cast<T>(i);
    } else if (v.is_number_float()) {
      const double d = v.get<double>();
      // 2^digits is exact in a double: T holds [-2^digits, 2^digits) (signed) or [0, 2^digits).
      const double limit = std::ldexp(1.0, std::numeric_limits<T>::digits);
      const double low = std::is_signed_v<T> ? -limit : 0.0;
      if (!std::isfinite(d) || d < low || d >= limit || std::trunc(d) != d) fail();
      out = static_cast<T>(d);
    } else {
      v.get_to(out);  // nlohmann's type error ("type must be number")
    }
  } else if constexpr (IsOptional<T>::value) {
    if (v.is_null()) {
      out.reset();
    } else {
      read_json_value(v, out.emplace(), path);
    }
  } else if constexpr (wire::detail::IsVector<T>::value) {
    if (!v.is_array()) {
      v.get_to(out);  // nlohmann's type error
      return;
    }
    T read;
    read.reserve(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
      const JsonPath at{&path, nullptr, nullptr, i};
      read_json_value(v[i], read.emplace_back(), at);
    }
    out = std::move(read);
  } else {
    if (!v.is_object()) {
      v.get_to(out);  // nlohmann's type error
      return;
    }
    T read;
    for (const auto& [key, element] : v.items()) {
      const std::string k = key;
      const JsonPath at{&path, nullptr, &k, 0};
      typename T::mapped_type m{};
      read_json_value(element, m, at);
      read.emplace(k, std::move(m));
    }
    out = std::move(read);
  }
}

// Reads member `name` of a JSON object into `out` (the from_json of the
// CATGA_* macros), with read_json_value's range checks. A member that is
// absent leaves `out` as it is (its default) unless `required`; a body that
// is not an object is an error either way (nlohmann's).
template <class T>
void read_json_field(const nlohmann::json& j, const char* name, T& out, bool required = true) {
  const JsonPath path{nullptr, name, nullptr, 0};
  if (j.is_object()) {
    if (const auto it = j.find(name); it != j.end()) {
      read_json_value(*it, out, path);
      return;
    }
    if (!required) return;  // e.g. from a producer older than the field
  }
  read_json_value(j.at(name), out, path);  // nlohmann's error: not an object, or key not found
}

// True when `name` is listed in T's CATGA_REQUIRED(...).
template <class T>
constexpr bool field_required(std::string_view name) noexcept {
  if constexpr (requires { T::catga_required_fields; }) {
    for (std::string_view r : T::catga_required_fields) {
      if (r == name) return true;
    }
  }
  return false;
}

// Every name in T's CATGA_REQUIRED(...) is a field of its CATGA_* list.
template <class T, class Fields>
constexpr bool required_fields_listed(const Fields& fields) noexcept {
  if constexpr (requires { T::catga_required_fields; }) {
    for (std::string_view r : T::catga_required_fields) {
      const bool listed = std::apply([&](const auto&... f) { return ((f.name == r) || ...); }, fields);
      if (!listed) return false;
    }
  }
  return true;
}

// The number of data members of an aggregate: the largest N for which
// T{a1, ..., aN} compiles, each a converting to any member type.
struct AnyMember {
  template <class U>
  operator U&() const&& noexcept;  // never defined: unevaluated use only
};
template <class T, std::size_t... I>
constexpr bool initializable_with(std::index_sequence<I...>) noexcept {
  return requires { T{(void(I), AnyMember{})...}; };
}
template <class T, std::size_t N = 0>
constexpr std::size_t aggregate_member_count() noexcept {
  if constexpr (!initializable_with<T>(std::make_index_sequence<N + 1>{})) {
    return N;
  } else {
    return aggregate_member_count<T, N + 1>();
  }
}

// A CATGA_* field list names every data member of T (checked for aggregates
// without base classes; a member left out would silently not be sent).
template <class T>
constexpr bool lists_every_member(std::size_t listed) noexcept {
  if constexpr (std::is_aggregate_v<T>) {
    return aggregate_member_count<T>() == listed;
  } else {
    return true;
  }
}

}  // namespace catga::detail

// The JSON codec of the CATGA_* macros: nlohmann's to_json, and a from_json
// that reads fields through catga::detail::read_json_field: integers
// range-checked, an absent field left at its default unless CATGA_REQUIRED.
#define CATGA_DETAIL_JSON_FROM(f)                                   \
  ::catga::detail::read_json_field(                                 \
      nlohmann_json_j, #f, nlohmann_json_t.f,                       \
      ::catga::detail::field_required<std::remove_cvref_t<decltype(nlohmann_json_t)>>(#f));
#define CATGA_DETAIL_JSON_CODEC(Type, ...)                                                   \
  inline void to_json(nlohmann::json& nlohmann_json_j, const Type& nlohmann_json_t) {        \
    NLOHMANN_JSON_EXPAND(NLOHMANN_JSON_PASTE(NLOHMANN_JSON_TO, __VA_ARGS__))                 \
  }                                                                                          \
  inline void from_json(const nlohmann::json& nlohmann_json_j, Type& nlohmann_json_t) {      \
    NLOHMANN_JSON_EXPAND(NLOHMANN_JSON_PASTE(CATGA_DETAIL_JSON_FROM, __VA_ARGS__))           \
  }

#define CATGA_MESSAGE(Type, Tag, WireName)                                             \
  [[maybe_unused]] constexpr ::catga::Declaration<Tag> catga_message(const Type*) noexcept { \
    return {WireName};                                                                 \
  }

// The field list, for the codecs that read and write a body without a JSON
// DOM (wire::read_fields, wire::write_fields): catga_fields(const Type*)
// returns a tuple of catga::Field{"name", &Type::name}, in declaration order.
// Also checked at compile time: the list names every data member of the
// struct (an aggregate), and CATGA_REQUIRED names only listed fields.
#define CATGA_DETAIL_FIELD_ENTRY(f) ::catga::make_field(#f, &CatgaSelf::f),
#define CATGA_FIELDS(Type, ...)                                                                    \
  [[maybe_unused]] constexpr auto catga_fields(const Type*) noexcept {                            \
    using CatgaSelf = Type;                                                                        \
    constexpr auto fields =                                                                        \
        ::std::tuple{NLOHMANN_JSON_EXPAND(NLOHMANN_JSON_PASTE(CATGA_DETAIL_FIELD_ENTRY, __VA_ARGS__))}; \
    static_assert(::catga::detail::lists_every_member<CatgaSelf>(::std::tuple_size_v<decltype(fields)>), \
                  "the CATGA_* field list of " #Type " must name every data member of the struct");      \
    static_assert(::catga::detail::required_fields_listed<CatgaSelf>(fields),                         \
                  "CATGA_REQUIRED of " #Type " names a field that is not in its CATGA_* list");          \
    return fields;                                                                                 \
  }

// Inside a struct: the fields a body must have. A CATGA_* message or struct
// decodes a body that lacks a field by leaving that field at its default
// (a producer older than the field, during a rolling upgrade); a field named
// here is required instead: a body without it is `malformed`, as is a body
// with a field of the wrong type, whatever the field.
//
//   struct ChargePayment {
//     std::string order_id;
//     double amount = 0;
//     std::string currency = "EUR";  // added later: old producers omit it
//     CATGA_REQUIRED(order_id, amount)
//   };
//   CATGA_COMMAND(ChargePayment, void, order_id, amount, currency)
#define CATGA_DETAIL_REQUIRED_NAME(f) ::std::string_view{#f},
#define CATGA_REQUIRED(...)                                       \
  static constexpr ::std::string_view catga_required_fields[] = { \
      NLOHMANN_JSON_EXPAND(NLOHMANN_JSON_PASTE(CATGA_DETAIL_REQUIRED_NAME, __VA_ARGS__))};

// A value type used inside messages (a field of a struct, an element of a
// vector): its JSON codec (integers range-checked, as in messages) and field
// list, so that messages holding it are decoded without a DOM too. Prefer it
// to nlohmann's NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE, whose get<int> of an
// out-of-range number is undefined behaviour.
//
//   struct OrderLine { std::string sku; int qty = 0; };
//   CATGA_STRUCT(OrderLine, sku, qty)
#define CATGA_STRUCT(Type, ...)                          \
  CATGA_DETAIL_JSON_CODEC(Type, __VA_ARGS__)             \
  CATGA_FIELDS(Type, __VA_ARGS__)

#define CATGA_COMMAND(Type, ResultType, ...)                        \
  CATGA_MESSAGE(Type, ::catga::CommandTag<ResultType>, #Type)       \
  CATGA_DETAIL_JSON_CODEC(Type, __VA_ARGS__)                        \
  CATGA_FIELDS(Type, __VA_ARGS__)

#define CATGA_QUERY(Type, ResultType, ...)                          \
  CATGA_MESSAGE(Type, ::catga::QueryTag<ResultType>, #Type)         \
  CATGA_DETAIL_JSON_CODEC(Type, __VA_ARGS__)                        \
  CATGA_FIELDS(Type, __VA_ARGS__)

#define CATGA_EVENT(Type, ...)                                      \
  CATGA_MESSAGE(Type, ::catga::EventTag, #Type)                     \
  CATGA_DETAIL_JSON_CODEC(Type, __VA_ARGS__)                        \
  CATGA_FIELDS(Type, __VA_ARGS__)

#define CATGA_QOS(Type, QosValue)                                           \
  [[maybe_unused]] constexpr ::catga::QoS catga_qos(const Type*) noexcept { \
    return QosValue;                                                        \
  }

// The version of a message's body, when its shape changed in a way that
// "absent fields keep their defaults" does not cover (a renamed field, a
// changed unit). Producers send it as the Catga-Message-Version header
// (absent means 1); a consumer given upcasters for the type
// (Mediator::upcast) brings an older body to this version before decoding
// it. A body newer than the consumer's version is decoded as it is.
//
//   struct ItemReserved { std::string order_id; int quantity = 0; };  // v1 had "qty"
//   CATGA_EVENT(ItemReserved, order_id, quantity)
//   CATGA_VERSION(ItemReserved, 2)
// The ordering key of an event: the field (a string or a number) whose
// equal values must be handled one at a time, in publish order, by ordered
// subscriptions (Mediator::subscribe_ordered; docs/transports.md, "Ordered
// groups"). The key travels as the Catga-Ordering-Key header and picks the
// partition in the subject, <prefix>.evt.<Type>.<partition>. A publisher may
// set the header itself to override the key of one message.
//
//   struct OrderPlaced { std::string order_id; double amount = 0; };
//   CATGA_EVENT(OrderPlaced, order_id, amount)
//   CATGA_ORDERING_KEY(OrderPlaced, order_id)
#define CATGA_ORDERING_KEY(Type, Field)                                      \
  [[maybe_unused]] inline std::string catga_ordering_key(const Type* m) {    \
    return ::catga::detail::ordering_key_text(m->Field);                     \
  }

#define CATGA_VERSION(Type, Version)                                            \
  [[maybe_unused]] constexpr int catga_version(const Type*) noexcept {          \
    static_assert((Version) >= 1, "CATGA_VERSION of " #Type " must be 1 or more"); \
    return (Version);                                                           \
  }
