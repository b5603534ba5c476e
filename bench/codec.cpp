// `codec` benchmark: the cost of reading and writing message bodies through
// the CATGA_* field lists (wire::read_fields / write_fields, the private
// codec behind catga/field_reader.hpp), against nlohmann's parse + get and
// dump in the same run, and of parsing ids and traceparents. Prints one JSON
// line; see BENCHMARKS.md ("codec").

#include <catga/context.hpp>
#include <catga/message.hpp>
#include <catga/wire.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace bench_codec {
// The transport benchmark's event: a 128-byte body.
struct Sent {
  std::string payload;
  std::int64_t sent_ns = 0;
};
CATGA_EVENT(Sent, payload, sent_ns)

struct Line {
  std::string sku;
  int quantity = 0;
  std::int64_t price_cents = 0;
};
CATGA_STRUCT(Line, sku, quantity, price_cents)

// A command with more fields, a vector and nested structs.
struct PlaceOrder {
  std::string order_id;
  std::string customer;
  std::vector<Line> lines;
  bool express = false;
  std::uint64_t version = 0;
};
CATGA_COMMAND(PlaceOrder, void, order_id, customer, lines, express, version)
}  // namespace bench_codec

using namespace bench_codec;
using catga::bench::keep;
using catga::bench::measure;

int main() {
  const Sent sent{std::string(96, 'x'), 1'765'000'000'123'456'789};
  const PlaceOrder order{"ord-000017", "customer-4711",
                         {{"SKU-1", 2, 1999}, {"SKU-22", 1, 45000}, {"SKU-333", 12, 250}},
                         true, 3};
  const std::string sent_body = catga::wire::encode_body(sent);
  const std::string order_body = catga::wire::encode_body(order);

  auto fast_read = [](const std::string& body, auto& out) {
    if (!catga::wire::read_fields(body, out)) std::abort();
    keep(out);
  };
  auto dom_read = [](const std::string& body, auto& out) {
    out = nlohmann::json::parse(body).get<std::decay_t<decltype(out)>>();
    keep(out);
  };
  Sent s;
  PlaceOrder o;
  const auto read_sent = measure([&] { fast_read(sent_body, s); }, 300'000);
  const auto read_sent_dom = measure([&] { dom_read(sent_body, s); }, 100'000);
  const auto read_order = measure([&] { fast_read(order_body, o); }, 300'000);
  const auto read_order_dom = measure([&] { dom_read(order_body, o); }, 100'000);
  const auto write_order = measure([&] { keep(catga::wire::encode_body(order)); }, 300'000);
  const auto write_order_dom = measure([&] { keep(nlohmann::json(order).dump()); }, 100'000);

  const std::string id_text = catga::MessageId::generate().text().str();
  const std::string traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const auto parse_id = measure([&] { keep(catga::MessageId::parse(id_text)); });
  const auto parse_tp = measure([&] { keep(catga::TraceContext::parse(traceparent)); });

  std::printf(
      "{\"bench\":\"codec\",\"read_event_ns\":%.1f,\"read_event_nlohmann_ns\":%.1f,\"read_event_ratio\":%.3f,"
      "\"read_order_ns\":%.1f,\"read_order_nlohmann_ns\":%.1f,\"read_order_ratio\":%.3f,"
      "\"write_order_ns\":%.1f,\"write_order_nlohmann_ns\":%.1f,\"write_order_ratio\":%.3f,"
      "\"parse_id_ns\":%.1f,\"parse_traceparent_ns\":%.1f}\n",
      read_sent.cpu_ns, read_sent_dom.cpu_ns, read_sent.cpu_ns / read_sent_dom.cpu_ns, read_order.cpu_ns,
      read_order_dom.cpu_ns, read_order.cpu_ns / read_order_dom.cpu_ns, write_order.cpu_ns, write_order_dom.cpu_ns,
      write_order.cpu_ns / write_order_dom.cpu_ns, parse_id.cpu_ns, parse_tp.cpu_ns);
  return 0;
}
