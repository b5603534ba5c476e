// Hostile input, black box (issue 21): the order-flow services run as
// separate processes around a real nats-server and are attacked the way a
// careless or malicious client would, over HTTP (oversized and deeply nested
// bodies, wrong types, huge strings, control characters, a reused
// Idempotency-Key, a forged actor, overflowing numbers, unknown routes) and
// over NATS with plain nats.c (commands and events with malformed JSON, an
// unknown Catga-Type, missing or out-of-range headers, overflowing numbers,
// empty ids, oversized and non-UTF-8 bodies). Each input must be refused
// with a clear error (a 4xx naming the field, an error reply, a dead
// letter); none may change stock, money, orders or notifications, crash a
// service or make its memory grow without bound. Afterwards every service
// is healthy and a normal order confirms. Prints
//   fault hostile_input: sent=<n> rejected=<n> accepted_wrongly=0 unclear=0 lost=0 rss_growth_kb=<n> ...
#include <arpa/inet.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "../nats/stream_reader.hpp"
#include "deployment.hpp"
#include "raw_nats.hpp"

using namespace oft;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// What the attack did, and what became of each input.
struct Tally {
  int sent = 0;
  int rejected = 0;          // refused with a clear error
  int accepted_wrongly = 0;  // acted on: 2xx/5xx, an ok reply, no dead letter although consumed
  int unclear = 0;           // refused, but not clearly (wrong status or code, no field named, no answer)
  std::vector<std::string> notes;

  void wrong(const std::string& what) {
    ++accepted_wrongly;
    notes.push_back("ACCEPTED " + what);
  }
  void vague(const std::string& what) {
    ++unclear;
    notes.push_back("UNCLEAR " + what);
  }
};

std::string cut(const std::string& s, std::size_t n = 200) { return s.size() <= n ? s : s.substr(0, n) + "..."; }

// --- HTTP over a plain socket: nothing is cleaned or refused client-side ----

struct HttpReply {
  int status = 0;  // 0: no answer
  std::string body;
};

bool send_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const auto w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// Sends `head` and then `body` in pieces, stopping early when the server
// already answered (a 413 comes before the body is read), and reads the reply
// until the server closes the connection. `half_close`: then shut the
// sending side, as a client whose body has no length ends it.
HttpReply raw_http(int port, const std::string& head, const std::string& body, bool half_close = false) {
  HttpReply out;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return out;
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return out;
  }
  bool sending = send_all(fd, head.data(), head.size());
  for (std::size_t at = 0; sending && at < body.size(); at += 16 * 1024) {
    // A server refusing a large body from its head alone answers before
    // reading it; giving it a moment first means no unread data is left
    // when it closes (which would reset the connection, answer and all).
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, at == 0 && body.size() > 16 * 1024 ? 50 : 0) > 0) break;  // answered already
    sending = send_all(fd, body.data() + at, std::min<std::size_t>(16 * 1024, body.size() - at));
  }
  if (half_close) ::shutdown(fd, SHUT_WR);
  std::string text;
  char buf[16 * 1024];
  for (;;) {
    const auto r = ::recv(fd, buf, sizeof buf, 0);
    if (r <= 0) break;
    text.append(buf, static_cast<std::size_t>(r));
  }
  ::close(fd);
  if (text.rfind("HTTP/1.", 0) != 0 || text.size() < 12) return out;
  out.status = std::atoi(text.c_str() + 9);
  const auto end = text.find("\r\n\r\n");
  if (end != std::string::npos) out.body = text.substr(end + 4);
  return out;
}

std::string http_head(const std::string& method, const std::string& path,
                      const std::vector<std::pair<std::string, std::string>>& headers, std::size_t body_size) {
  std::string h = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  bool chunked = false;
  for (const auto& [k, v] : headers) {
    h += k + ": " + v + "\r\n";
    chunked = chunked || k == "Transfer-Encoding";
  }
  if (!chunked && (method == "POST" || method == "PUT" || body_size > 0)) {
    h += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body_size) + "\r\n";
  }
  return h + "\r\n";
}

struct HttpCase {
  std::string name;
  std::string method;
  std::string path;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  int expect = 400;        // the status a clear refusal has
  std::string field = "";  // the field a 400 must name ("" = any message)
};

// A 4xx is clear when it has the expected status, a JSON error with a
// message (naming the field where one is wrong) and no exception text.
void judge_http(Tally& t, const HttpCase& c, const HttpReply& r) {
  ++t.sent;
  const std::string what = c.name + ": " + std::to_string(r.status) + " " + cut(r.body);
  if (r.status == 0) return t.vague(c.name + ": no answer");
  if (r.status < 400 || r.status >= 500) return t.wrong(what);
  if (r.status != c.expect && !(c.expect == 404 && r.status == 405)) return t.vague(what + " (expected " + std::to_string(c.expect) + ")");
  if (r.body.find("exception") != std::string::npos || r.body.find("what()") != std::string::npos) {
    return t.vague(what + " (exception text)");
  }
  if (c.expect == 400 || c.expect == 422) {
    const json b = json::parse(r.body, nullptr, false);
    if (!b.is_object() || !b.contains("error") || b["error"].value("message", "").empty()) {
      return t.vague(what + " (no error message)");
    }
    if (!c.field.empty()) {
      bool named = false;
      for (const auto& f : b["error"].value("fields", json::array())) {
        named = named || f.value("field", "").rfind(c.field, 0) == 0;
      }
      if (!named) return t.vague(what + " (field " + c.field + " not named)");
    }
  }
  ++t.rejected;
}

json order(json customer, json items, json amount) {
  return {{"customer", std::move(customer)}, {"items", std::move(items)}, {"amount", std::move(amount)}};
}
json item(json sku, json qty) { return {{"sku", std::move(sku)}, {"qty", std::move(qty)}}; }
json one_item() { return json::array({item("A-1", 1)}); }

std::vector<HttpCase> http_cases() {
  std::vector<HttpCase> cs;
  auto post = [&](std::string name, std::string body, std::string field = "", int expect = 400,
                  std::vector<std::pair<std::string, std::string>> headers = {}) {
    if (headers.empty()) headers = {{"Idempotency-Key", "hostile-" + name}};
    cs.push_back({std::move(name), "POST", "/orders", std::move(body), std::move(headers), expect, std::move(field)});
  };
  const json good = order("hostile", one_item(), 10.0);

  // Size and shape.
  post("oversized_body", "{\"customer\":\"" + std::string(1 << 20, 'x') + "\"}", "", 413);
  post("nested_100k", std::string(100'000, '['), "", 413);  // over the body limit before any parsing
  post("nested_60k", std::string(60'000, '[') + std::string(60'000, ']'), "", 413);
  post("nested_30k", std::string(30'000, '[') + std::string(30'000, ']'));
  std::string nested_objects;
  for (int i = 0; i < 2000; ++i) nested_objects += "{\"a\":";
  post("nested_objects", nested_objects + "1" + std::string(2000, '}'));
  {
    // No Content-Length: cpp-httplib would read a chunked body whole, past
    // the limit, so it is refused unread whatever its size.
    HttpCase chunked{"oversized_chunked", "POST", "/orders", "",
                     {{"Idempotency-Key", "hostile-chunked"}, {"Transfer-Encoding", "chunked"}}, 411, ""};
    for (int i = 0; i < 64; ++i) chunked.body += "4000\r\n" + std::string(0x4000, ' ') + "\r\n";
    chunked.body += "0\r\n\r\n";
    cs.push_back(std::move(chunked));
  }
  post("empty_body", "");
  post("not_json", "customer=c1&amount=10");
  post("truncated_json", R"({"customer":"c1","items":[{"sku":"A-1","qty":1}],"amount":)");
  post("invalid_utf8", "{\"customer\":\"c\xff\xfe\",\"items\":[{\"sku\":\"A-1\",\"qty\":1}],\"amount\":10}");
  for (const auto& [n, b] : std::vector<std::pair<std::string, json>>{
           {"body_array", json::array()}, {"body_string", "order"}, {"body_number", 5}, {"body_null", nullptr}}) {
    post(n, b.dump());
  }

  // A wrong type in every field.
  const std::vector<json> not_string = {5, nullptr, true, json::array(), json::object(), 1.5};
  const std::vector<json> not_number = {"10", nullptr, true, json::array(), json::object()};
  for (std::size_t i = 0; i < not_string.size(); ++i) {
    post("customer_type_" + std::to_string(i), order(not_string[i], one_item(), 10.0).dump(), "customer");
    post("sku_type_" + std::to_string(i), order("c", json::array({item(not_string[i], 1)}), 10.0).dump(), "items[0].sku");
  }
  for (std::size_t i = 0; i < not_number.size(); ++i) {
    post("amount_type_" + std::to_string(i), order("c", one_item(), not_number[i]).dump(), "amount");
    post("qty_type_" + std::to_string(i), order("c", json::array({item("A-1", not_number[i])}), 10.0).dump(),
         "items[0].qty");
  }
  post("qty_fraction", order("c", json::array({item("A-1", 1.5)}), 10.0).dump(), "items[0].qty");
  post("items_type_string", order("c", "A-1", 10.0).dump(), "items");
  post("items_type_object", order("c", item("A-1", 1), 10.0).dump(), "items");
  post("items_of_numbers", order("c", json::array({1, 2}), 10.0).dump(), "items[0]");
  post("item_without_qty", order("c", json::array({{{"sku", "A-1"}}}), 10.0).dump(), "items[0].qty");
  post("missing_everything", json::object().dump(), "customer");

  // Numbers out of range: overflowing, negative, zero, huge.
  for (const auto& [n, q] : std::vector<std::pair<std::string, std::string>>{{"qty_int_max_plus_1", "2147483648"},
                                                                              {"qty_int64_max_plus_1", "9223372036854775808"},
                                                                              {"qty_uint64_overflow", "18446744073709551616"},
                                                                              {"qty_1e308", "1e308"},
                                                                              {"qty_negative", "-1"},
                                                                              {"qty_int_min", "-2147483648"},
                                                                              {"qty_zero", "0"},
                                                                              {"qty_1001", "1001"}}) {
    post(n, R"({"customer":"c","items":[{"sku":"A-1","qty":)" + q + R"(}],"amount":10})", "items[0].qty");
  }
  for (const auto& [n, a] : std::vector<std::pair<std::string, std::string>>{{"amount_negative", "-1"},
                                                                              {"amount_zero", "0"},
                                                                              {"amount_1e308", "1e308"},
                                                                              {"amount_int_max_plus_1", "2147483648"},
                                                                              {"amount_over_1e9", "1000000001"},
                                                                              {"amount_tiny_negative", "-1e-300"}}) {
    post(n, R"({"customer":"c","items":[{"sku":"A-1","qty":1}],"amount":)" + a + "}", "amount");
  }
  // Not a double at all: nlohmann refuses it while parsing, so the body is
  // not valid JSON (no field to name).
  post("amount_overflow_1e309", R"({"customer":"c","items":[{"sku":"A-1","qty":1}],"amount":1e309})");
  post("too_many_items", order("c", json(std::vector<json>(51, item("A-1", 1))), 10.0).dump(), "items");

  // Huge strings and control characters.
  post("customer_huge", order(std::string(60'000, 'c'), one_item(), 10.0).dump(), "customer");
  post("customer_empty", order("", one_item(), 10.0).dump(), "customer");
  post("sku_huge", order("c", json::array({item(std::string(5000, 'S'), 1)}), 10.0).dump(), "items[0].sku");
  post("sku_empty", order("c", json::array({item("", 1)}), 10.0).dump(), "items[0].sku");
  post("sku_wildcard", order("c", json::array({item("A.>", 1)}), 10.0).dump(), "items[0].sku");
  post("customer_newline", order("c1\nFORGED level=error msg=\"owned\"", one_item(), 10.0).dump(), "customer");
  post("customer_cr", order("c1\rFORGED", one_item(), 10.0).dump(), "customer");
  post("customer_nul", order(std::string("c1\0x", 4), one_item(), 10.0).dump(), "customer");
  post("customer_escape", order("c1\x1b[31m", one_item(), 10.0).dump(), "customer");
  post("customer_del", order("c1\x7f", one_item(), 10.0).dump(), "customer");

  // Idempotency-Key: charset and length (sent byte for byte).
  for (const auto& [n, k] : std::vector<std::pair<std::string, std::string>>{{"key_tab", "k\tFORGED"},
                                                                              {"key_ctrl", "k\x01x"},
                                                                              {"key_del", "k\x7fx"},
                                                                              {"key_space", "k FORGED level=error"},
                                                                              {"key_star", "k*>"},
                                                                              {"key_utf8", "k\xc3\xa9"},
                                                                              {"key_bad_utf8", "k\xff"},
                                                                              {"key_129", std::string(129, 'k')},
                                                                              {"key_huge", std::string(6000, 'k')}}) {
    post(n, good.dump(), "", 400, {{"Idempotency-Key", k}});
  }

  // Cancel: a forged actor, wrong types, huge and control-laden reasons.
  auto cancel = [&](std::string name, std::string id, std::string body, std::string field, int expect = 400) {
    cs.push_back({std::move(name), "POST", "/orders/" + id + "/cancel", std::move(body), {}, expect, std::move(field)});
  };
  cancel("cancel_forged_actor", "hostile-none", R"({"actor":"saga:order-1"})", "actor");
  cancel("cancel_forged_actor_only_service", "hostile-none", R"({"reason":"r","actor":"inventory:inventory-1"})",
         "actor");
  cancel("cancel_reason_number", "hostile-none", R"({"reason":5})", "reason");
  cancel("cancel_reason_object", "hostile-none", R"({"reason":{"a":1}})", "reason");
  cancel("cancel_reason_huge", "hostile-none", json{{"reason", std::string(10'000, 'r')}}.dump(), "reason");
  cancel("cancel_body_array", "hostile-none", "[]", "");
  cancel("cancel_body_broken", "hostile-none", "{", "");
  cancel("cancel_reason_newline_unknown_order", "hostile-none",
         json{{"reason", "r\nFORGED level=error msg=\"owned\""}}.dump(), "", 404);

  // Unknown routes and methods.
  auto other = [&](std::string name, std::string method, std::string path, int expect = 404) {
    cs.push_back({std::move(name), std::move(method), std::move(path), "", {}, expect, ""});
  };
  other("unknown_route", "GET", "/admin");
  other("path_traversal", "GET", "/orders/../../etc/passwd");
  other("order_id_huge", "GET", "/orders/" + std::string(3000, 'o'));
  other("order_id_unknown", "GET", "/orders/hostile-none");
  // cpp-httplib reads a DELETE's body too: without a Content-Length, until
  // the client closes. Refused unread like any body of unannounced size.
  other("delete_orders", "DELETE", "/orders", 411);
  other("put_order", "PUT", "/orders/hostile-none");
  other("post_inventory_on_order_service", "POST", "/inventory");
  other("status_unknown", "GET", "/orders?status=evil", 400);
  return cs;
}

// --- NATS, with plain nats.c -------------------------------------------------

using Headers = std::vector<std::pair<std::string, std::string>>;

natsMsg* make_msg(const std::string& subject, const std::string& body, const Headers& headers) {
  natsMsg* m = nullptr;
  catga::test::check(natsMsg_Create(&m, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size())),
                     "natsMsg_Create");
  for (const auto& [k, v] : headers) catga::test::check(natsMsgHeader_Set(m, k.c_str(), v.c_str()), "header " + k);
  return m;
}

Headers good_headers(const std::string& id, const std::string& type) {
  return {{"Nats-Msg-Id", id}, {"Catga-Type", type}, {"Content-Type", "application/json"}};
}

struct NatsCase {
  std::string name;
  std::string type;  // the subject's type
  std::string body;
  Headers headers;
};

// The refusals the framework and the sample give for what cannot be handled.
bool clear_code(const std::string& code) {
  return code == "malformed" || code == "validation" || code == "unknown_type" || code == "too_large";
}

// A valid message of each type: every hostile one below breaks one thing.
json valid_body(const std::string& type, const std::string& id) {
  if (type == "PlaceOrder") return {{"customer", "hostile"}, {"items", one_item()}, {"amount", 10.0}};
  if (type == "ConfirmOrder") return {{"order_id", id}};
  if (type == "CancelOrder") return {{"order_id", id}, {"reason", "r"}, {"actor", "customer:x"}};
  if (type == "ReserveInventory") return {{"order_id", id}, {"items", one_item()}};
  if (type == "ReleaseInventory" || type == "RefundPayment") return {{"order_id", id}, {"reason", "r"}};
  if (type == "ChargePayment") return {{"order_id", id}, {"customer", "hostile"}, {"amount", 10.0}};
  if (type == "OrderConfirmed") {
    return {{"order_id", id}, {"customer", "hostile"}, {"amount", 10.0}, {"by", "x"}, {"at_ms", 1}};
  }
  if (type == "OrderCancelled") {
    return {{"order_id", id}, {"customer", "hostile"}, {"reason", "r"}, {"actor", "x"}, {"from", "pending"},
            {"by", "x"}, {"at_ms", 1}};
  }
  if (type == "InventoryReserved") return {{"order_id", id}, {"items", one_item()}, {"by", "x"}, {"at_ms", 1}};
  if (type == "InventoryReleased") {
    return {{"order_id", id}, {"items", one_item()}, {"reason", "r"}, {"by", "x"}, {"at_ms", 1}};
  }
  if (type == "PaymentCharged") {
    return {{"order_id", id}, {"customer", "hostile"}, {"amount", 10.0}, {"payment_id", "p"}, {"by", "x"},
            {"at_ms", 1}};
  }
  if (type == "PaymentFailed") {
    return {{"order_id", id}, {"customer", "hostile"}, {"amount", 10.0}, {"reason", "r"}, {"by", "x"}, {"at_ms", 1}};
  }
  FAIL("no valid body for " << type);
  return {};
}

// Replaces `field` of the valid body by the literal JSON text `value`.
std::string with_field(const std::string& type, const std::string& id, const std::string& field,
                       const std::string& value) {
  json b = valid_body(type, id);
  b[field] = "@@";
  std::string text = b.dump();
  text.replace(text.find("\"@@\""), 4, value);
  return text;
}

// Cases every type gets: broken bodies and broken or hostile headers, each
// on an otherwise valid message, so a header that slipped through would be
// acted on (and show as accepted).
std::vector<NatsCase> common_cases(const std::string& type, int& n) {
  std::vector<NatsCase> cs;
  auto id = [&] { return "hostile-" + std::to_string(++n); };
  auto add = [&](std::string name, std::string body, Headers h) {
    cs.push_back({type + "/" + name, type, std::move(body), std::move(h)});
  };
  std::string i = id();
  add("malformed_json", R"({"order_id":)", good_headers(i, type));
  i = id();
  add("invalid_utf8", "{\"order_id\":\"\xff\xfe\"}", good_headers(i, type));
  i = id();
  add("body_array", "[1,2,3]", good_headers(i, type));
  i = id();
  add("unknown_type", valid_body(type, i).dump(), good_headers(i, "NoSuchType"));
  i = id();
  add("type_of_another_message", valid_body(type, i).dump(), good_headers(i, "OrderPlaced"));
  i = id();
  add("missing_headers", valid_body(type, i).dump(), {});
  i = id();
  add("missing_msg_id", valid_body(type, i).dump(), {{"Catga-Type", type}});
  i = id();
  add("missing_type", valid_body(type, i).dump(), {{"Nats-Msg-Id", i}});
  i = id();
  add("msg_id_with_space", valid_body(type, i).dump(), good_headers(i + " x", type));
  i = id();
  add("msg_id_huge", valid_body(type, i).dump(), good_headers(i + std::string(300, 'm'), type));  // unique: the stream dedupes ids
  for (const auto& t : {"10000000000000", "-1", "abc", "99999999999999999999999", "1e3", "86400001", " 5x"}) {
    i = id();
    Headers h = good_headers(i, type);
    h.emplace_back("Catga-Timeout-Ms", t);
    add(std::string("timeout_ms=") + t, valid_body(type, i).dump(), h);
  }
  i = id();
  add("oversized", "{\"order_id\":\"" + std::string(900 * 1024, 'x') + "\"}", good_headers(i, type));
  return cs;
}

// Field-level cases: overflowing and negative numbers, empty and odd ids,
// control characters, wrong types.
std::vector<NatsCase> field_cases(const std::string& type, int& n) {
  std::vector<NatsCase> cs;
  const json valid = valid_body(type, "x");
  auto add = [&](const std::string& field, const std::string& value) {
    const std::string id = "hostile-" + std::to_string(++n);
    cs.push_back({type + "/" + field + "=" + cut(value, 24), type, with_field(type, id, field, value),
                  good_headers(id, type)});
  };
  if (valid.contains("order_id")) {
    for (const auto& v : {"\"\"", "\"a b\"", "\"a.>\"", "\"$JS.API\"", "5", "null"}) add("order_id", v);
    add("order_id", "\"" + std::string(65, 'o') + "\"");
  }
  if (valid.contains("amount")) {
    for (const auto& v : {"-1", "0", "1e308", "-1e308", "2147483648", "1000000001", "\"10\"", "null"}) {
      add("amount", v);
    }
  }
  if (valid.contains("items")) {
    for (const auto& q : {"-1", "0", "2147483648", "-2147483649", "9223372036854775808", "1e308", "1.5", "\"1\"",
                          "1001"}) {
      add("items", std::string(R"([{"sku":"A-1","qty":)") + q + "}]");
    }
    add("items", R"([{"sku":"","qty":1}])");
    add("items", R"([{"sku":"A-1"}])");
    add("items", "5");
  }
  if (valid.contains("customer")) {
    for (const auto& v : {"\"\"", "\"c\\nFORGED level=error\"", "\"c\\u0000\"", "7"}) add("customer", v);
    add("customer", "\"" + std::string(2000, 'c') + "\"");
  }
  if (valid.contains("actor")) {
    for (const auto& v : {"\"\"", "\"saga\\r\\nFORGED\"", "[]"}) add("actor", v);
  }
  if (valid.contains("from")) {
    for (const auto& v : {"\"\"", "\"pending\\nFORGED\"", "\"no-such-status\"", "1"}) add("from", v);
  }
  if (valid.contains("payment_id")) {
    for (const auto& v : {"\"\"", "\"p\\r\\nFORGED\"", "[]"}) add("payment_id", v);
  }
  if (valid.contains("at_ms")) add("at_ms", "-1");
  if (valid.contains("by")) {
    for (const auto& v : {"\"\"", "\"x\\u001b[31m\""}) add("by", v);
  }
  if (valid.contains("reason")) {
    add("reason", "\"" + std::string(70'000, 'r') + "\"");
    add("reason", "5");
  }
  if (valid.contains("at_ms")) {
    for (const auto& v : {"9223372036854775808", "1e308", "1.5", "\"1\""}) add("at_ms", v);
  }
  return cs;
}

// Sends each command case as a request; an error reply with a clear code
// is a refusal, an ok reply means it was acted on.
void attack_commands(Tally& t, catga::test::RawNats& raw, const std::vector<NatsCase>& cases) {
  for (const auto& c : cases) {
    ++t.sent;
    natsMsg* m = make_msg("catga.cmd." + c.type, c.body, c.headers);
    natsMsg* reply = nullptr;
    const natsStatus s = natsConnection_RequestMsg(&reply, raw.nc(), m, 15000);  // generous: a loaded machine
    natsMsg_Destroy(m);
    if (s != NATS_OK) {
      t.vague(c.name + ": no reply (" + natsStatus_GetText(s) + ")");
      continue;
    }
    const std::string body(natsMsg_GetData(reply) != nullptr ? natsMsg_GetData(reply) : "",
                           static_cast<std::size_t>(natsMsg_GetDataLength(reply)));
    natsMsg_Destroy(reply);
    const json r = json::parse(body, nullptr, false);
    if (!r.is_object()) {
      t.vague(c.name + ": reply is not JSON: " + cut(body));
    } else if (r.value("ok", false)) {
      t.wrong(c.name + ": " + cut(body));
    } else {
      const std::string code = r.contains("error") ? r["error"].value("code", "") : "";
      const std::string message = r.contains("error") ? r["error"].value("message", "") : "";
      if (!clear_code(code) || message.empty()) {
        t.vague(c.name + ": " + cut(body));
      } else {
        ++t.rejected;
      }
    }
  }
}

// The consumer groups of each event the sample consumes.
const std::map<std::string, std::vector<std::string>>& event_groups() {
  static const std::map<std::string, std::vector<std::string>> groups{
      {"OrderConfirmed", {"inventory", "notification"}}, {"OrderCancelled", {"notification"}},
      {"InventoryReserved", {"order-history"}},          {"InventoryReleased", {"order-history"}},
      {"PaymentCharged", {"order-history"}},             {"PaymentFailed", {"order-history"}}};
  return groups;
}

// Publishes each event case into the events stream; returns, per stream
// sequence, the case published there. The sample's events are keyed by
// order id (CATGA_ORDERING_KEY), so they travel on a partition's subject,
// catga.evt.<Type>.<partition>: the cases go round the 16 partitions.
std::map<std::uint64_t, const NatsCase*> publish_events(catga::test::RawNats& raw, const std::vector<NatsCase>& cases) {
  std::map<std::uint64_t, const NatsCase*> by_seq;
  std::size_t i = 0;
  for (const auto& c : cases) {
    natsMsg* m = make_msg("catga.evt." + c.type + "." + std::to_string(i++ % 16), c.body, c.headers);
    jsPubAck* ack = nullptr;
    jsErrCode jerr{};
    const natsStatus s = js_PublishMsg(&ack, raw.js(), m, nullptr, &jerr);
    natsMsg_Destroy(m);
    catga::test::check(s, "js_PublishMsg " + c.name);
    by_seq[ack->Sequence] = &c;
    jsPubAck_Destroy(ack);
  }
  return by_seq;
}

// --- state snapshots -----------------------------------------------------------

long rss_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

// Everything a hostile input could have changed, as the services report it.
struct Books {
  json stock;         // inventory: available per SKU
  json inventory;     // inventory: totals
  json payments;      // payment: totals
  std::size_t orders = 0;
  int notifications = 0;
};

Books books(Deployment& d) {
  Books b;
  const json inv = d.get_json(d.get("inventory-1"), "/inventory");
  const json pay = d.get_json(d.get("payment-1"), "/payments");
  REQUIRE_MESSAGE(inv.is_object(), "no /inventory\n" << d.tails());
  REQUIRE_MESSAGE(pay.is_object(), "no /payments\n" << d.tails());
  b.stock = inv.at("stock");
  b.inventory = inv.at("totals");
  b.payments = pay.at("totals");
  b.orders = orders_of(d, d.get("order-1")).size();
  b.notifications = d.get_json(d.get("notification-1"), "/notifications").value("count", -1);
  return b;
}

// True when no line of any service's log starts with the forged marker.
bool no_forged_line(Deployment& d) {
  for (const auto& s : d.services()) {
    const std::string log = s->process->log();
    if (log.find("\nFORGED") != std::string::npos || log.find("\rFORGED") != std::string::npos) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("hostile input over HTTP and NATS is refused clearly; nothing changes, nothing grows, all stay healthy") {
  Deployment d;
  d.add_standard(1);
  d.start_all();
  Service& order_svc = d.get("order-1");
  auto http = d.client(order_svc);

  // An earlier order whose key the attack reuses with another body.
  const json first_body = order_body("reuser", json::array({item("A-2", 1)}), 15.0);
  const std::string first_id = place(http, first_body, "hostile-reused-key");
  REQUIRE_MESSAGE(!first_id.empty(), d.tails());
  REQUIRE(wait_final(d, order_svc, first_id).at("status") == "confirmed");
  REQUIRE(eventually([&] { return d.get_json(d.get("notification-1"), "/notifications").value("count", 0) == 1; }));

  const Books before = books(d);
  std::map<std::string, long> rss_before;
  for (const auto& s : d.services()) rss_before[s->instance] = rss_kb(s->process->pid());

  Tally t;
  const auto started = std::chrono::steady_clock::now();

  // --- HTTP ---
  std::vector<HttpCase> hc = http_cases();
  hc.push_back({"reused_key_other_body", "POST", "/orders",
                order_body("reuser", json::array({item("A-2", 2)}), 30.0).dump(),
                {{"Idempotency-Key", "hostile-reused-key"}}, 422, ""});
  for (const auto& c : hc) {
    const HttpReply r = raw_http(order_svc.port, http_head(c.method, c.path, c.headers, c.body.size()), c.body);
    if (c.name == "reused_key_other_body") {
      CHECK_MESSAGE(r.body.find(first_id) == std::string::npos, "the 422 reveals the other order: " << r.body);
    }
    judge_http(t, c, r);
  }
  // A body sent without a length, ended by closing: refused before it is read.
  {
    const HttpCase c{"body_without_length", "POST", "/orders", std::string(200'000, ' '), {}, 411, ""};
    const std::string head =
        "POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n\r\n";
    judge_http(t, c, raw_http(order_svc.port, head, c.body, true));
  }
  // Every role bounds bodies, also on routes it does not have.
  for (const char* instance : {"inventory-1", "payment-1", "notification-1"}) {
    for (const char* path : {"/inventory", "/no-such-route"}) {
      const HttpCase big{std::string("oversized_to_") + instance + path, "POST", path, std::string(1 << 20, 'x'),
                         {}, 413, ""};
      judge_http(t, big, raw_http(d.get(instance).port, http_head("POST", path, {}, big.body.size()), big.body));
      const HttpCase chunked{std::string("chunked_to_") + instance + path, "POST", path, "0\r\n\r\n",
                             {{"Transfer-Encoding", "chunked"}}, 411, ""};
      judge_http(t, chunked, raw_http(d.get(instance).port, http_head("POST", path, chunked.headers, 0), chunked.body));
    }
  }
  const int http_sent = t.sent;

  // --- NATS ---
  catga::test::RawNats raw(d.nats().url());
  int n = 0;
  std::vector<NatsCase> commands;
  for (const char* type : {"PlaceOrder", "ConfirmOrder", "CancelOrder", "ReserveInventory", "ReleaseInventory",
                           "ChargePayment", "RefundPayment"}) {
    for (auto& c : common_cases(type, n)) commands.push_back(std::move(c));
    for (auto& c : field_cases(type, n)) commands.push_back(std::move(c));
  }
  attack_commands(t, raw, commands);
  const int commands_sent = static_cast<int>(commands.size());

  std::vector<NatsCase> events;
  for (const auto& [type, groups] : event_groups()) {
    for (auto& c : common_cases(type, n)) events.push_back(std::move(c));
    for (auto& c : field_cases(type, n)) events.push_back(std::move(c));
  }
  const auto by_seq = publish_events(raw, events);
  // Each consuming group dead-letters each hostile event (docs/guarantees.md:
  // "Malformed JSON, an unknown type or missing headers → dead letter").
  std::set<std::pair<std::uint64_t, std::string>> expected;
  for (const auto& [seq, c] : by_seq) {
    for (const auto& g : event_groups().at(c->type)) expected.insert({seq, g});
  }
  const bool all_dead = eventually([&] { return nt::stream_count(raw, "CATGA_DLQ") >= expected.size(); }, 40s);
  std::map<std::pair<std::uint64_t, std::string>, nt::Stored> dead;
  std::map<std::string, int> dead_groups;
  for (auto& s : nt::read_stream(raw, "CATGA_DLQ")) {
    ++dead_groups[s.header("Catga-Group")];
    if (!s.has("Catga-Original-Seq")) continue;  // not a dead letter of a consumer group
    dead[{std::stoull(s.header("Catga-Original-Seq")), s.header("Catga-Group")}] = std::move(s);
  }
  if (!all_dead) {
    for (const auto& [g, count] : dead_groups) MESSAGE("dead letters of group " << g << ": " << count);
  }
  int lost = 0;
  for (const auto& key : expected) {
    ++t.sent;
    const NatsCase& c = *by_seq.at(key.first);
    const auto it = dead.find(key);
    if (it == dead.end()) {
      ++lost;
      t.wrong(c.name + " (group " + key.second + "): not dead-lettered");
      continue;
    }
    const nt::Stored& s = it->second;
    const std::string code = s.header("Catga-Error-Code");
    if (!clear_code(code) || s.header("Catga-Error").size() < 10 || s.subject != "catga.dlq." + c.type) {
      t.vague(c.name + " (group " + key.second + "): " + s.subject + " " + code + " " + s.header("Catga-Error"));
    } else {
      ++t.rejected;
    }
  }
  for (const auto& [key, s] : dead) {
    CHECK_MESSAGE(expected.count(key) != 0, "an unexpected dead letter: " << s.subject << " " << key.second << " "
                                                                          << s.header("Catga-Error"));
  }
  const double attack_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  // Nothing changed: stock, money, orders, notifications.
  const Books after = books(d);
  CHECK_MESSAGE(after.stock == before.stock, before.stock.dump() << " -> " << after.stock.dump());
  CHECK_MESSAGE(after.inventory == before.inventory, before.inventory.dump() << " -> " << after.inventory.dump());
  CHECK_MESSAGE(after.payments == before.payments, before.payments.dump() << " -> " << after.payments.dump());
  CHECK(after.orders == before.orders);
  CHECK(after.notifications == before.notifications);
  const int changed = (after.stock != before.stock) + (after.inventory != before.inventory) +
                      (after.payments != before.payments) + (after.orders != before.orders) +
                      (after.notifications != before.notifications);
  for (int i = 0; i < changed; ++i) t.wrong("the books changed");
  CHECK_MESSAGE(no_forged_line(d), "a client's text started a log line");

  // Every process alive, healthy and ready; memory bounded. The attack sent
  // about 40 MB in total (mostly 900 KiB NATS bodies, each held briefly), so
  // a service that kept what it was sent would grow by tens of MB; allocator
  // arenas and caches warming up account for a few MB. 64 MiB per process
  // is far above the second and far below what keeping the input would cost
  // if the attack were repeated.
  constexpr long kMaxGrowthKb = 64 * 1024;
  long growth_max = 0;
  std::string growth_text;
  for (const auto& s : d.services()) {
    REQUIRE_MESSAGE(s->process->running(), s->instance << " died\n" << d.tail(*s));
    const long grown = rss_kb(s->process->pid()) - rss_before[s->instance];
    growth_max = std::max(growth_max, grown);
    growth_text += " " + s->instance + "=" + std::to_string(grown);
    CHECK_MESSAGE(grown < kMaxGrowthKb, s->instance << " grew by " << grown << " kB");
    auto c = d.client(*s);
    auto health = c.Get("/healthz");
    CHECK_MESSAGE((health && health->status == 200), s->instance << " /healthz");
    auto ready = c.Get("/readyz");
    CHECK_MESSAGE((ready && ready->status == 200), s->instance << " /readyz");
  }

  // A normal order still confirms, and moves exactly its own stock and money.
  const std::string normal = place(http, order_body("after-attack", json::array({item("A-3", 3)}), 42.5), "hostile-after");
  REQUIRE_MESSAGE(!normal.empty(), d.tails());
  CHECK(wait_final(d, order_svc, normal).at("status") == "confirmed");
  REQUIRE(eventually([&] { return books(d).notifications == before.notifications + 1; }));
  const Books last = books(d);
  CHECK(last.stock.at("A-3").at("available").get<long>() == before.stock.at("A-3").at("available").get<long>() - 3);
  CHECK(last.payments.at("charged").get<double>() == doctest::Approx(before.payments.at("charged").get<double>() + 42.5));
  CHECK(last.orders == before.orders + 1);
  check_everything(d, order_svc);

  for (const auto& note : t.notes) MESSAGE(note);
  const std::string line = "fault hostile_input: sent=" + std::to_string(t.sent) + " rejected=" +
                           std::to_string(t.rejected) + " accepted_wrongly=" + std::to_string(t.accepted_wrongly) +
                           " unclear=" + std::to_string(t.unclear) + " lost=" + std::to_string(lost) +
                           " rss_growth_kb=" + std::to_string(growth_max) + " http=" + std::to_string(http_sent) +
                           " nats_commands=" + std::to_string(commands_sent) + " nats_event_deliveries=" +
                           std::to_string(expected.size()) + " attack_s=" + std::to_string(attack_s).substr(0, 4);
  std::printf("%s\n  rss_growth_kb per service:%s\n", line.c_str(), growth_text.c_str());
  std::fflush(stdout);
  CHECK(t.accepted_wrongly == 0);
  CHECK(t.unclear == 0);
  CHECK(t.rejected == t.sent);
}
