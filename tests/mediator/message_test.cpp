// Message declarations: kinds, wire names, QoS and the JSON codec.

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "test_messages.hpp"

using namespace catga_test;

namespace {

// Encodes through the type-erased codec, as transports do.
template <class M>
nlohmann::json encode_erased(const M& m) {
  const auto& info = catga::message_info<M>();
  REQUIRE((info.encode != nullptr));
  nlohmann::json j;
  info.encode(j, &m);
  return j;
}

}  // namespace

TEST_CASE("declaration macros give each message its kind and result type") {
  static_assert(catga::Command<PlaceOrder> && !catga::Query<PlaceOrder> && !catga::Event<PlaceOrder>);
  static_assert(catga::Command<ShipOrder>);
  static_assert(catga::Query<GetPrice> && !catga::Command<GetPrice>);
  static_assert(catga::Event<OrderPlaced> && !catga::Request<OrderPlaced>);
  static_assert(catga::Request<PlaceOrder> && catga::Request<GetPrice>);
  static_assert(std::is_same_v<catga::result_t<PlaceOrder>, std::string>);
  static_assert(std::is_same_v<catga::result_t<ShipOrder>, void>);
  static_assert(std::is_same_v<catga::result_t<GetPrice>, Price>);
  static_assert(std::is_same_v<catga::result_t<OrderPlaced>, void>);
  static_assert(!catga::Message<int>);
  static_assert(!catga::Message<Price>);  // a codec alone does not make a message

  CHECK(catga::message_info<PlaceOrder>().kind == catga::MessageKind::command);
  CHECK(catga::message_info<GetPrice>().kind == catga::MessageKind::query);
  CHECK(catga::message_info<OrderPlaced>().kind == catga::MessageKind::event);
  CHECK(catga::message_info<PlaceOrder>().has_result);
  CHECK_FALSE(catga::message_info<ShipOrder>().has_result);
  CHECK(catga::message_info<GetPrice>().has_result);
  CHECK_FALSE(catga::message_info<OrderPlaced>().has_result);
  CHECK(catga::to_string(catga::MessageKind::query) == "query");
}

TEST_CASE("wire names are the declared names, not typeid names") {
  CHECK(catga::message_name<PlaceOrder>() == "PlaceOrder");
  CHECK(catga::message_name<ShipOrder>() == "ShipOrder");
  CHECK(catga::message_name<GetPrice>() == "GetPrice");
  CHECK(catga::message_name<OrderPlaced>() == "OrderPlaced");
  CHECK(catga::message_name<Ping>() == "system.Ping");
  CHECK(catga::message_info<OrderPlaced>().name == "OrderPlaced");
  // The mangled name carries the namespace; the wire name must not.
  CHECK(std::string(typeid(PlaceOrder).name()) != "PlaceOrder");
  CHECK(catga::message_info<PlaceOrder>().name.find("catga_test") == std::string_view::npos);
  // Names are usable at compile time (subjects, static tables).
  static_assert(catga::message_name<GetPrice>() == "GetPrice");
}

TEST_CASE("QoS defaults to at_least_once and can be declared") {
  CHECK(catga::message_qos<PlaceOrder>() == catga::QoS::at_least_once);
  CHECK(catga::message_qos<OrderPlaced>() == catga::QoS::exactly_once);
  CHECK(catga::message_qos<Ping>() == catga::QoS::at_most_once);
  CHECK(catga::message_info<OrderPlaced>().qos == catga::QoS::exactly_once);
  CHECK(catga::to_string(catga::QoS::exactly_once) == "exactly_once");
}

TEST_CASE("every message type gets its own slot, stable across calls") {
  const auto& a = catga::message_info<PlaceOrder>();
  const auto& b = catga::message_info<ShipOrder>();
  const auto& c = catga::message_info<GetPrice>();
  const auto& d = catga::message_info<OrderPlaced>();
  CHECK(&a == &catga::message_info<PlaceOrder>());
  CHECK(a.slot != b.slot);
  CHECK(a.slot != c.slot);
  CHECK(a.slot != d.slot);
  CHECK(b.slot != c.slot);
  CHECK(b.slot != d.slot);
  CHECK(c.slot != d.slot);
}

TEST_CASE("JSON round trip of a command with a result") {
  const PlaceOrder in{"alice", {"A-1", "B-2"}, 42.5};
  const nlohmann::json direct = in;
  CHECK(direct == nlohmann::json{{"customer", "alice"}, {"skus", {"A-1", "B-2"}}, {"amount", 42.5}});
  CHECK(direct.get<PlaceOrder>() == in);

  const auto erased = encode_erased(in);
  CHECK(erased == direct);
  CHECK(nlohmann::json::parse(erased.dump()).get<PlaceOrder>() == in);

  // The result codec works on std::optional<R>, as the idempotency store uses it.
  const auto& info = catga::message_info<PlaceOrder>();
  REQUIRE((info.encode_result != nullptr));
  REQUIRE((info.decode_result != nullptr));
  std::optional<std::string> result = "order-7";
  nlohmann::json rj;
  info.encode_result(rj, &result);
  CHECK(rj == "order-7");
  std::optional<std::string> back;
  CHECK(info.decode_result(rj, &back));
  CHECK(back == result);
  std::optional<std::string> bad;
  CHECK_FALSE(info.decode_result(nlohmann::json{{"not", "a string"}}, &bad));
  CHECK_FALSE(bad.has_value());
}

TEST_CASE("JSON round trip of a command without a result") {
  const ShipOrder in{"order-7", 3};
  const nlohmann::json direct = in;
  CHECK(direct == nlohmann::json{{"order_id", "order-7"}, {"priority", 3}});
  CHECK(direct.get<ShipOrder>() == in);
  CHECK(encode_erased(in) == direct);
  const auto& info = catga::message_info<ShipOrder>();
  CHECK((info.encode_result == nullptr));
  CHECK((info.decode_result == nullptr));
}

TEST_CASE("JSON round trip of a query and its structured result") {
  const GetPrice in{"A-1"};
  const nlohmann::json direct = in;
  CHECK(direct == nlohmann::json{{"sku", "A-1"}});
  CHECK(encode_erased(in).get<GetPrice>() == in);

  const auto& info = catga::message_info<GetPrice>();
  std::optional<Price> result = Price{"EUR", 1999};
  nlohmann::json rj;
  info.encode_result(rj, &result);
  CHECK(rj == nlohmann::json{{"currency", "EUR"}, {"cents", 1999}});
  std::optional<Price> back;
  CHECK(info.decode_result(rj, &back));
  CHECK(back == result);
}

TEST_CASE("JSON round trip of an event") {
  const OrderPlaced in{"order-7", 99.25};
  const nlohmann::json direct = in;
  CHECK(direct == nlohmann::json{{"order_id", "order-7"}, {"amount", 99.25}});
  CHECK(encode_erased(in).get<OrderPlaced>() == in);
  CHECK(nlohmann::json::parse(direct.dump()).get<OrderPlaced>() == in);
}

TEST_CASE("hand-written codecs and codec-less messages") {
  CHECK(encode_erased(Ping{}) == nlohmann::json::object());
  static_assert(catga::JsonCodable<Ping>);
  static_assert(!catga::JsonEncodable<LocalOnly>);
  const auto& info = catga::message_info<LocalOnly>();
  CHECK((info.encode == nullptr));
  CHECK((info.encode_result != nullptr));  // int has a codec even if the message does not
  CHECK(info.name == "LocalOnly");
}

namespace contract_test {
struct Line {
  std::string sku;
  int qty = 1;
  CATGA_REQUIRED(sku)
};
CATGA_STRUCT(Line, sku, qty)
// Version 2 of an event: `currency` and `lines` were added; producers of
// version 1 send neither.
struct Charged {
  std::string order_id;
  std::int64_t cents = 0;
  std::string currency = "EUR";
  std::vector<Line> lines;
  CATGA_REQUIRED(order_id, cents)
};
CATGA_EVENT(Charged, order_id, cents, currency, lines)
}  // namespace contract_test

// Before: a body without any one field was malformed (nlohmann's at()), so
// a message from a producer older than a field was dead-lettered.
TEST_CASE("a body without a field decodes with the field's default; unknown fields are ignored") {
  using contract_test::Charged;
  const auto old = nlohmann::json{{"order_id", "o-1"}, {"cents", 250}}.get<Charged>();
  CHECK(old.order_id == "o-1");
  CHECK(old.cents == 250);
  CHECK(old.currency == "EUR");
  CHECK(old.lines.empty());
  const auto newer =
      nlohmann::json::parse(R"({"order_id":"o-2","cents":1,"lines":[{"sku":"A"}],"coupon":"X","v":3})").get<Charged>();
  CHECK(newer.order_id == "o-2");
  REQUIRE(newer.lines.size() == 1);
  CHECK(newer.lines[0].qty == 1);  // absent inside a CATGA_STRUCT too
  CHECK(newer.currency == "EUR");
  // The field-list codec hands such bodies to nlohmann, which decides.
  Charged direct;
  CHECK_FALSE(catga::wire::read_fields(R"({"order_id":"o-1","cents":250})", direct));
  // Without CATGA_REQUIRED every field may be absent.
  CHECK(nlohmann::json::object().get<PlaceOrder>() == PlaceOrder{});
}

TEST_CASE("CATGA_REQUIRED fields, wrong types and bodies that are not objects are still errors") {
  using contract_test::Charged;
  CHECK_THROWS_AS(nlohmann::json({{"cents", 1}}).get<Charged>(), nlohmann::json::exception);
  CHECK_THROWS_AS(nlohmann::json({{"order_id", "o"}}).get<Charged>(), nlohmann::json::exception);
  CHECK_THROWS_AS(nlohmann::json::parse(R"({"order_id":"o","cents":1,"lines":[{"qty":2}]})").get<Charged>(),
                  nlohmann::json::exception);  // a required field inside a struct
  CHECK_THROWS(nlohmann::json::parse(R"({"order_id":"o","cents":1,"currency":5})").get<Charged>());
  CHECK_THROWS(nlohmann::json::parse(R"({"order_id":"o","cents":1,"currency":null})").get<Charged>());
  for (const char* body : {"[]", "5", "\"o\"", "null", "true"}) {
    CAPTURE(body);
    CHECK_THROWS(nlohmann::json::parse(body).get<PlaceOrder>());
    CHECK_THROWS(nlohmann::json::parse(body).get<Charged>());
  }
}

TEST_CASE("the field list is checked against the struct at compile time") {
  // Also a compile-fail test: mediator_field_list_checked.
  static_assert(catga::detail::aggregate_member_count<contract_test::Charged>() == 4);
  static_assert(catga::detail::lists_every_member<contract_test::Charged>(4));
  static_assert(!catga::detail::lists_every_member<contract_test::Charged>(3));
  static_assert(catga::detail::aggregate_member_count<PlaceOrder>() == 3);
  static_assert(catga::detail::field_required<contract_test::Charged>("cents"));
  static_assert(!catga::detail::field_required<contract_test::Charged>("currency"));
  static_assert(!catga::detail::field_required<PlaceOrder>("customer"));
  CHECK(std::tuple_size_v<decltype(catga_fields(static_cast<const contract_test::Charged*>(nullptr)))> == 4);
}

namespace range_test {
struct Counted {
  int n = 0;
  std::uint16_t small = 0;
  std::int64_t big = 0;
};
CATGA_EVENT(Counted, n, small, big)
}  // namespace range_test

TEST_CASE("CATGA_* codecs range-check integers: out-of-range or fractional values are errors, never UB") {
  using range_test::Counted;
  auto decode = [](const char* text) { return nlohmann::json::parse(text).get<Counted>(); };
  const auto ok = decode(R"({"n":-2147483648,"small":65535,"big":-9223372036854775808})");
  CHECK(ok.n == std::numeric_limits<int>::min());
  CHECK(ok.small == 65535);
  CHECK(ok.big == std::numeric_limits<std::int64_t>::min());
  CHECK(decode(R"({"n":3.0,"small":0,"big":0})").n == 3);  // a whole float is fine
  for (const char* bad : {R"({"n":1.11111e+46,"small":0,"big":0})", R"({"n":2147483648,"small":0,"big":0})",
                          R"({"n":-2147483649,"small":0,"big":0})", R"({"n":3.5,"small":0,"big":0})",
                          R"({"n":0,"small":65536,"big":0})", R"({"n":0,"small":-1,"big":0})",
                          R"({"n":0,"small":0,"big":9223372036854775808})", R"({"n":0,"small":0,"big":9.3e18})",
                          R"({"n":0,"small":0,"big":1e308})", R"({"n":"7","small":0,"big":0})"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(decode(bad), std::exception);
  }
}

// std::optional has no JSON codec in nlohmann 3.11.2; an application that
// uses optionals in messages declares one like this.
namespace nlohmann {
template <class T>
struct adl_serializer<std::optional<T>> {
  static void to_json(json& j, const std::optional<T>& o) {
    if (o) {
      j = *o;
    } else {
      j = nullptr;
    }
  }
  static void from_json(const json& j, std::optional<T>& o) {
    if (j.is_null()) {
      o.reset();
    } else {
      o = j.get<T>();
    }
  }
};
}  // namespace nlohmann

namespace range_test {
struct Containers {
  std::vector<int> counts;
  std::optional<std::uint16_t> port;
  std::map<std::string, int> stock;
  std::vector<std::vector<std::int8_t>> grid;
  std::map<std::string, std::optional<std::vector<unsigned>>> nested;
};
CATGA_EVENT(Containers, counts, port, stock, grid, nested)
}  // namespace range_test

TEST_CASE("CATGA_* codecs range-check integers inside vectors, optionals and maps the same way") {
  using range_test::Containers;
  auto decode = [](const std::string& text) { return nlohmann::json::parse(text).get<Containers>(); };
  // Valid bodies: values at the limits, whole floats, null optionals.
  const auto ok = decode(
      R"({"counts":[-2147483648,2147483647,3.0],"port":65535,"stock":{"A":1,"B":-2},"grid":[[127,-128],[]],)"
      R"("nested":{"x":[4294967295],"y":null}})");
  CHECK(ok.counts == std::vector<int>{std::numeric_limits<int>::min(), std::numeric_limits<int>::max(), 3});
  CHECK(ok.port == std::optional<std::uint16_t>(65535));
  CHECK(ok.stock == std::map<std::string, int>{{"A", 1}, {"B", -2}});
  CHECK(ok.grid == std::vector<std::vector<std::int8_t>>{{127, -128}, {}});
  CHECK(ok.nested.at("x") == std::optional<std::vector<unsigned>>(std::vector<unsigned>{4294967295U}));
  CHECK_FALSE(ok.nested.at("y").has_value());
  CHECK_FALSE(decode(R"({"counts":[],"port":null,"stock":{},"grid":[],"nested":{}})").port.has_value());
  // Every integer out of its range, or with a fraction, is an error naming
  // where it is: never wrapped, truncated or converted with undefined behaviour.
  const std::string rest_counts = R"("port":1,"stock":{},"grid":[],"nested":{}})";
  const std::vector<std::pair<std::string, std::string>> bad{
      {R"({"counts":[1,2147483648],)" + rest_counts, "counts[1]"},
      {R"({"counts":[-2147483649],)" + rest_counts, "counts[0]"},
      {R"({"counts":[1e46],)" + rest_counts, "counts[0]"},
      {R"({"counts":[0,0,3.5],)" + rest_counts, "counts[2]"},
      {R"({"counts":[1e308],)" + rest_counts, "counts[0]"},
      {R"({"counts":[],"port":65536,"stock":{},"grid":[],"nested":{}})", "port"},
      {R"({"counts":[],"port":-1,"stock":{},"grid":[],"nested":{}})", "port"},
      {R"({"counts":[],"port":1.5,"stock":{},"grid":[],"nested":{}})", "port"},
      {R"({"counts":[],"port":1,"stock":{"A":1,"B":4294967296},"grid":[],"nested":{}})", "stock[\"B\"]"},
      {R"({"counts":[],"port":1,"stock":{"A":-1e40},"grid":[],"nested":{}})", "stock[\"A\"]"},
      {R"({"counts":[],"port":1,"stock":{},"grid":[[1],[2,128]],"nested":{}})", "grid[1][1]"},
      {R"({"counts":[],"port":1,"stock":{},"grid":[[-129]],"nested":{}})", "grid[0][0]"},
      {R"({"counts":[],"port":1,"stock":{},"grid":[],"nested":{"x":[1,-1]}})", "nested[\"x\"][1]"},
      {R"({"counts":[],"port":1,"stock":{},"grid":[],"nested":{"x":[4294967296]}})", "nested[\"x\"][0]"},
  };
  for (const auto& [text, where] : bad) {
    CAPTURE(text);
    std::string message;
    try {
      decode(text);
    } catch (const std::exception& e) {
      message = e.what();
    }
    CHECK_MESSAGE(message.find("field '" + where + "'") != std::string::npos, "error: " << message);
  }
  // A value of the wrong JSON type keeps nlohmann's own error.
  CHECK_THROWS_AS(decode(R"({"counts":"1","port":1,"stock":{},"grid":[],"nested":{}})"), nlohmann::json::type_error);
  CHECK_THROWS_AS(decode(R"({"counts":[],"port":1,"stock":[],"grid":[],"nested":{}})"), nlohmann::json::type_error);
  CHECK_THROWS_AS(decode(R"({"counts":["7"],"port":1,"stock":{},"grid":[],"nested":{}})"),
                  nlohmann::json::type_error);
  // Round trip through the message codec.
  const Containers in{{1, -2}, std::uint16_t{80}, {{"k", 5}}, {{1, 2}}, {{"n", std::vector<unsigned>{7}}}};
  const nlohmann::json j = in;
  const Containers back = j.get<Containers>();
  CHECK(back.counts == in.counts);
  CHECK(back.port == in.port);
  CHECK(back.stock == in.stock);
  CHECK(back.grid == in.grid);
  CHECK(back.nested == in.nested);
}
