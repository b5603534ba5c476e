// wire::read_fields (a body decoded straight into a CATGA_* struct) against
// nlohmann: whenever read_fields takes a body, nlohmann must accept it too
// and decode the same values; where it does not, nlohmann decides.

#include <doctest/doctest.h>

#include <catga/json_fields.hpp>
#include <catga/message.hpp>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace jf {
struct Line {
  std::string sku;
  int qty = 0;
  bool operator==(const Line&) const = default;
};
CATGA_STRUCT(Line, sku, qty)

struct Order {
  std::string id;
  std::int64_t total = 0;
  std::uint32_t count = 0;
  double price = 0;
  float ratio = 0;
  bool paid = false;
  std::vector<Line> lines;
  std::vector<std::int64_t> tags;
  bool operator==(const Order&) const = default;
};
CATGA_EVENT(Order, id, total, count, price, ratio, paid, lines, tags)

// Everything write_fields writes itself (no floating point).
struct Shipment {
  std::string zeta;
  std::uint8_t small = 0;
  std::int64_t alpha = 0;
  bool done = false;
  std::vector<Line> lines;
  std::vector<std::string> notes;
  std::uint64_t big = 0;
  bool operator==(const Shipment&) const = default;
};
CATGA_EVENT(Shipment, zeta, small, alpha, done, lines, notes, big)

enum class Color { red, green };
struct Painted {
  Color color = Color::red;
};
CATGA_EVENT(Painted, color)

struct Tagged {
  std::map<std::string, std::string> tags;
};
CATGA_EVENT(Tagged, tags)
}  // namespace jf

// Field types read_fields does not decode itself leave the whole struct to nlohmann.
static_assert(catga::wire::fast_codable<jf::Order>());
static_assert(!catga::wire::fast_codable<jf::Painted>());
static_assert(!catga::wire::fast_codable<jf::Tagged>());
static_assert(!catga::wire::fast_codable<jf::Order, /*ForWrite=*/true>());  // floats: nlohmann writes them
static_assert(catga::wire::fast_codable<jf::Shipment, true>());

namespace {

// Checks one body; returns whether read_fields took it.
bool check_against_nlohmann(const std::string& body) {
  INFO("body: " << body);
  jf::Order fast;
  const bool taken = catga::wire::read_fields(body, fast);
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (!taken) return false;
  REQUIRE_FALSE(j.is_discarded());
  jf::Order reference;
  REQUIRE_NOTHROW(reference = j.get<jf::Order>());
  CHECK(fast == reference);
  return true;
}

const std::string kTypical =
    R"({"id":"o-1","total":-1999,"count":3,"price":19.99,"ratio":0.5,"paid":true,)"
    R"("lines":[{"sku":"A","qty":2},{"sku":"B","qty":1}],"tags":[1,-2,9223372036854775807]})";

}  // namespace

TEST_CASE("read_fields: typical bodies are decoded without nlohmann, to nlohmann's values") {
  const std::vector<std::string> taken = {
      kTypical,
      // Another order, spaces, an unknown key of every kind (skipped, as nlohmann's from_json does).
      R"( { "tags" : [ ] , "lines" : [ ] , "paid" : false , "ratio" : 1e-3 , "price" : 2 , "count" : 4294967295 ,)"
      R"( "total" : 0 , "id" : "" , "extra" : { "a" : [ 1 , 2.5 , "x" , null , true ] } } )",
      // A repeated key: the last value wins, as in nlohmann.
      R"({"id":"first","id":"last","total":1,"count":1,"price":1.5,"ratio":2,"paid":true,"lines":[],"tags":[]})",
  };
  for (const auto& body : taken) CHECK(check_against_nlohmann(body));
  // Out of range for the field: neither read_fields nor the JSON codec takes it.
  for (const std::string body :
       {R"({"id":"x","total":1,"count":4294967296,"price":1E2,"ratio":3.4e38,"paid":false,"lines":[],"tags":[]})",
        R"({"id":"x","total":1,"count":-1,"price":1,"ratio":1,"paid":false,"lines":[],"tags":[]})"}) {
    CAPTURE(body);
    jf::Order out_of_range;
    CHECK_FALSE(catga::wire::read_fields(body, out_of_range));
    CHECK_THROWS(nlohmann::json::parse(body).get<jf::Order>());
  }
  jf::Order o;
  REQUIRE(catga::wire::read_fields(kTypical, o));
  CHECK(o.id == "o-1");
  CHECK(o.total == -1999);
  CHECK(o.price == 19.99);
  REQUIRE(o.lines.size() == 2);
  CHECK(o.lines[1] == jf::Line{"B", 1});
  CHECK(o.tags == std::vector<std::int64_t>{1, -2, INT64_MAX});
}

TEST_CASE("read_fields: other bodies are left to nlohmann") {
  const std::vector<std::string> handed_over = {
      R"({"id":"o-1"})",                                                        // fields missing
      R"({"id":1,"total":1,"count":1,"price":1,"ratio":1,"paid":true,"lines":[],"tags":[]})",    // wrong type
      R"({"id":"x","total":1.5,"count":1,"price":1,"ratio":1,"paid":true,"lines":[],"tags":[]})",  // float into int
      R"({"id":"x","total":null,"count":1,"price":1,"ratio":1,"paid":true,"lines":[],"tags":[]})",  // null
      R"({"id":"a\"b","total":1,"count":1,"price":1,"ratio":1,"paid":true,"lines":[],"tags":[]})",  // escape
      R"({"id":"x","total":1,"count":1,"price":1e999,"ratio":1,"paid":true,"lines":[],"tags":[]})",  // overflow
      R"({"id":"x","total":-0,"count":1,"price":1,"ratio":1,"paid":true,"lines":[],"tags":[]})",    // -0
      R"({"id":"x","total":1,"count":1,"price":1,"ratio":1,"paid":1,"lines":[],"tags":[]})",       // int for bool
      R"({"id":"x","total":1,"count":1,"price":1,"ratio":1,"paid":true,"lines":[{"sku":"A"}],"tags":[]})",
      kTypical + " x",  // trailing garbage
      kTypical.substr(0, kTypical.size() - 1),  // truncated
      "[]",
      "",
  };
  for (const auto& body : handed_over) {
    INFO("body: " << body);
    jf::Order o;
    CHECK_FALSE(catga::wire::read_fields(body, o));
  }
}

TEST_CASE("read_fields: random mutations agree with nlohmann") {
  std::mt19937 rng(20261122);
  const std::string alphabet = "{}[]\":,-0123456789.eEtrufalsn \\x\x01\x80";
  int taken = 0;
  for (int i = 0; i < 20'000; ++i) {
    std::string body = kTypical;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = rng() % body.size();
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0: body[at] = c; break;
        case 1: body.insert(body.begin() + static_cast<std::ptrdiff_t>(at), c); break;
        default: body.erase(at, 1); break;
      }
    }
    if (check_against_nlohmann(body)) ++taken;
  }
  // Both outcomes were exercised (a broken generator would make this vacuous).
  MESSAGE("taken by read_fields: " << taken << " of 20000");
  CHECK(taken > 1000);
  CHECK(taken < 20'000);
}

TEST_CASE("write_fields: exactly nlohmann's text, keys in nlohmann's order, or nothing") {
  std::mt19937 rng(20261122);
  const std::vector<std::string> texts = {"", "plain", "with space", "quote\"", "back\\slash", "new\nline",
                                          "caf\xc3\xa9", "tab\t", "~!@#$%^&*()_+{}|:<>?"};
  auto text = [&] { return texts[rng() % texts.size()]; };
  int written = 0;
  for (int i = 0; i < 2'000; ++i) {
    jf::Shipment s;
    s.zeta = text();
    s.small = static_cast<std::uint8_t>(rng());
    s.alpha = static_cast<std::int64_t>(rng()) * (rng() % 2 == 0 ? -1 : 1) * static_cast<std::int64_t>(rng());
    s.done = rng() % 2 == 0;
    for (unsigned n = rng() % 3; n > 0; --n) s.lines.push_back({text(), static_cast<int>(rng()) - 5});
    for (unsigned n = rng() % 3; n > 0; --n) s.notes.push_back(text());
    s.big = rng() % 4 == 0 ? UINT64_MAX : rng();
    const std::string reference = nlohmann::json(s).dump();
    std::string out = "prefix";
    if (catga::wire::write_fields(s, out)) {
      ++written;
      CHECK(out == "prefix" + reference);
    } else {
      CHECK(out == "prefix");  // nothing half-written
    }
    CHECK(catga::wire::encode_body(s) == reference);
    // And back: read_fields takes what write_fields wrote.
    jf::Shipment back;
    if (catga::wire::read_fields(reference, back)) CHECK(back == s);
  }
  MESSAGE("written by write_fields: " << written << " of 2000");
  CHECK(written > 100);
  CHECK(written < 2'000);
  // A type with floats: always nlohmann's text.
  jf::Order o;
  o.price = 19.99;
  o.ratio = 0.1f;
  CHECK(catga::wire::encode_body(o) == nlohmann::json(o).dump());
}
