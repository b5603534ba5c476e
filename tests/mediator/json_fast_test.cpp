// wire::parse_json's fast path against nlohmann's parser: whenever the fast
// path takes a document it must build exactly the value nlohmann builds
// (same types, same numbers), and parse_json as a whole must accept and
// reject exactly what nlohmann does. wire::dump_json must write exactly
// nlohmann's dump() text.

#include <doctest/doctest.h>

#include <catga/wire.hpp>
#include <random>
#include <string>
#include <vector>

namespace {

// Equal values with equal types all the way down (nlohmann's operator==
// treats 1u and 1 as equal; the wire contract does not).
bool same(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.type() != b.type()) return false;
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(); it != a.end(); ++it) {
      auto other = b.find(it.key());
      if (other == b.end() || !same(*it, *other)) return false;
    }
    return true;
  }
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!same(a[i], b[i])) return false;
    }
    return true;
  }
  return a == b;
}

// Checks one text: the fast path agrees with nlohmann when it answers, and
// parse_json agrees with nlohmann always. Returns whether the fast path answered.
bool check_against_nlohmann(const std::string& text) {
  const auto reference = nlohmann::json::parse(text, nullptr, false);
  if (!reference.is_discarded()) REQUIRE(catga::wire::dump_json(reference) == reference.dump());
  nlohmann::json fast;
  const bool taken = catga::wire::parse_json_fast(text, fast);
  INFO("text: " << text);
  if (taken) {
    REQUIRE_FALSE(reference.is_discarded());
    REQUIRE(same(fast, reference));
  }
  const auto parsed = catga::wire::parse_json(text);
  REQUIRE(static_cast<bool>(parsed) == !reference.is_discarded());
  if (parsed) REQUIRE(same(*parsed, reference));
  return taken;
}

}  // namespace

TEST_CASE("parse_json fast path: typical bodies are taken and equal nlohmann's values") {
  const std::vector<std::string> taken = {
      R"({"sent_ns":1000000000000000000,"payload":"xxxxxxxx"})",
      R"({"order_id":"o-1","lines":[{"sku":"A","qty":2},{"sku":"B","qty":1}],"total":1999,"paid":true,"note":null})",
      R"( { "a" : [ 1 , -2 , 0 , -9223372036854775808 , 18446744073709551615 ] } )",
      R"({"most_digits_unchecked":9999999999999999999,"negative":-999999999999999999})",
      R"({"dup":1,"dup":"last wins"})",
      R"([])",
      R"({})",
      R"("just a string")",
      R"(-1)",
      "\t{\"nested\":{\"deeper\":{\"deepest\":[[],[{}]]}}}\r\n",
  };
  for (const auto& t : taken) CHECK(check_against_nlohmann(t));
}

TEST_CASE("parse_json fast path: other shapes go to nlohmann, which decides") {
  const std::vector<std::string> handed_over = {
      R"({"price":19.99})",                          // fraction
      R"({"big":1e3})",                              // exponent
      R"({"over":18446744073709551616})",            // beyond uint64: a float in nlohmann
      R"({"over":99999999999999999999})",            // 20 digits beyond uint64
      R"({"under":-9999999999999999999})",           // 19 digits below int64
      R"({"over":-100000000000000000000})",          // 21 digits
      R"({"under":-9223372036854775809})",           // beyond int64
      R"({"zero":-0})",                              // negative zero
      R"({"escaped":"a\"b\\c\n\u00e9"})",            // escapes
      "{\"utf8\":\"caf\xc3\xa9\"}",                  // valid UTF-8
      "{\"bad\":\"\xff\xfe\"}",                      // invalid UTF-8: rejected
      "\xEF\xBB\xBF{\"bom\":1}",                     // a byte order mark
      R"({"a":1,})",                                 // trailing comma: rejected
      R"({"a":01})",                                 // leading zero: rejected
      R"({"a":1} x)",                                // trailing garbage: rejected
      R"({"a":tru})",                                // broken literal: rejected
      "{\"ctl\":\"a\x01\"}",                         // control character: rejected
      "",                                            // empty: rejected
      R"({"a")",                                     // truncated: rejected
      std::string(100, '[') + std::string(100, ']'),  // deeper than the fast path goes
  };
  for (const auto& t : handed_over) CHECK_FALSE(check_against_nlohmann(t));
}

TEST_CASE("parse_json fast path: random mutations of bodies agree with nlohmann") {
  // Deterministic: the same 20,000 texts on every run.
  std::mt19937 rng(20261122);
  const std::vector<std::string> seeds = {
      R"({"sent_ns":1000000000000000000,"payload":"xxxxxxxx"})",
      R"({"order_id":"o-1","lines":[{"sku":"A","qty":2}],"total":-1999,"paid":false,"note":null})",
      R"([1,2,[3,{"k":"v"}],true,null,"s"])",
  };
  const std::string alphabet = "{}[]\":,-0123456789.eEtrufalsn \\x\x01\x80\xc3\xa9";
  int taken = 0;
  for (int i = 0; i < 20'000; ++i) {
    std::string text = seeds[static_cast<std::size_t>(i) % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      const std::size_t at = rng() % text.size();
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0: text[at] = c; break;
        case 1: text.insert(text.begin() + static_cast<std::ptrdiff_t>(at), c); break;
        default: text.erase(at, 1); break;
      }
    }
    if (check_against_nlohmann(text)) ++taken;
  }
  // Both outcomes were exercised (a broken generator would make this vacuous).
  CHECK(taken > 100);
  CHECK(taken < 20'000);
}

TEST_CASE("dump_json writes exactly nlohmann's text") {
  nlohmann::json j = {
      {"plain", "abc xyz ~!@#$%^&*()"},
      {"escaped", "quote\" backslash\\ newline\n tab\t ctl\x01"},
      {"utf8", "caf\xc3\xa9 \xe2\x82\xac"},
      {"int", -42},
      {"uint", 18446744073709551615ULL},
      {"min", INT64_MIN},
      {"float", 19.99},
      {"whole_float", 2.0},
      {"tiny", 1e-300},
      {"bool", true},
      {"null", nullptr},
      {"array", {1, "two", 3.5, false, nullptr, nlohmann::json::object(), nlohmann::json::array()}},
      {"nested", {{"z", 1}, {"a", {{"deep", "x"}}}}},
      {"", "empty key"},
      {"key\"quoted", "k"},
  };
  CHECK(catga::wire::dump_json(j) == j.dump());
  CHECK(catga::wire::dump_json(nlohmann::json("top")) == "\"top\"");
  CHECK(catga::wire::dump_json(nlohmann::json(7)) == "7");
  // Invalid UTF-8 fails as nlohmann's dump does, not with half a body.
  CHECK_THROWS_AS((void)catga::wire::dump_json(nlohmann::json{{"bad", "\xff"}}), nlohmann::json::type_error);
}
