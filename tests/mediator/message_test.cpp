// Message declarations: kinds, wire names, QoS and the JSON codec.

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <typeinfo>

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

TEST_CASE("decoding a message with a missing field fails") {
  CHECK_THROWS_AS(nlohmann::json({{"customer", "bob"}}).get<PlaceOrder>(), nlohmann::json::exception);
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
