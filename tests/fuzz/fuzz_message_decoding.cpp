// libFuzzer target: a NATS message as it arrives (subject, reply subject,
// raw NATS/1.0 header block, body) through the path that turns it into a
// catga delivery: nats.c's header parsing, NatsDelivery, the ack-subject
// parser, wire::read_context and the JSON decoding of decode_delivery, the
// reply decoder, and the header copy of dead-lettering. Then a decoded
// message is encoded again and must decode to the same ids.
//
// Input (see corpus/): line 1 the subject, line 2 the reply subject, the
// rest the message buffer; a buffer starting with "NATS/1.0" holds a header
// block up to the first blank line ("\r\n\r\n"), else it is all body.
#include <nats/nats.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "ack_reply.hpp"
#include "catga/mediator.hpp"
#include "catga/wire.hpp"
#include "message.hpp"
#include "natsc_internals.hpp"

namespace fuzz {

struct Line {
  std::string sku;
  int qty = 0;
};
CATGA_STRUCT(Line, sku, qty)  // its ints are range-checked like the message's

struct OrderPlaced {
  std::string order_id;
  int amount = 0;
  std::vector<Line> lines;
  bool express = false;
};
CATGA_EVENT(OrderPlaced, order_id, amount, lines, express)

}  // namespace fuzz

namespace {

using catga::nats::detail::NatsDelivery;

std::string_view take_line(std::string_view& rest) {
  const auto nl = rest.find('\n');
  if (nl == std::string_view::npos) {
    auto line = rest;
    rest = {};
    return line;
  }
  auto line = rest.substr(0, nl);
  rest.remove_prefix(nl + 1);
  return line;
}

[[noreturn]] void invariant_broken(const char* what) {
  std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
  std::abort();
}

// Encodes a decoded event as catga would publish it, and reads it back.
void round_trip(const fuzz::OrderPlaced& event, const catga::Context& ctx) {
  const nlohmann::json j = event;
  const std::string body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  catga::nats::detail::MsgHandle out;
  if (natsMsg_Create(out.out(), "catga.evt.OrderPlaced", nullptr, body.data(), static_cast<int>(body.size())) !=
      NATS_OK) {
    return;
  }
  catga::wire::write_headers(ctx, "OrderPlaced", [&](std::string_view k, std::string_view v) {
    (void)catga::nats::detail::set_header(out.get(), k, v);
  });
  NatsDelivery back(out.get(), 1, 0);
  catga::Context again;
  auto decoded = catga::detail::decode_delivery<fuzz::OrderPlaced>(back, again);
  if (!decoded) invariant_broken("a re-encoded message does not decode");
  if (again.message_id.text().view() != ctx.message_id.text().view()) invariant_broken("message id changed");
  if (again.correlation_id.text().view() != ctx.correlation_id.text().view()) {
    invariant_broken("correlation id changed");
  }
  if (decoded->order_id != event.order_id || decoded->lines.size() != event.lines.size()) {
    invariant_broken("body changed");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  nats_Open(-1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  std::string subject(take_line(rest));
  if (subject.empty()) subject = "catga.evt.OrderPlaced";
  const std::string reply(take_line(rest));
  int header_len = 0;
  if (rest.substr(0, 8) == "NATS/1.0") {
    const auto end = rest.find("\r\n\r\n");
    header_len = static_cast<int>(end == std::string_view::npos ? rest.size() : end + 4);
  }

  catga::nats::detail::MsgHandle msg;
  // natsMsg_create, as nats.c builds received messages: `rest` holds the
  // header block (`header_len` bytes) followed by the payload.
  if (catga::nats::detail::natsc_internals::create_message(msg.out(), subject, reply.c_str(), rest.data(),
                                                           static_cast<int>(rest.size()), header_len) != NATS_OK) {
    return 0;
  }
  natsMsg* m = msg.get();

  // What the pull consumer does with every message it receives.
  const auto meta = catga::nats::detail::parse_ack_reply(catga::nats::detail::reply_of(m));
  const int attempt = meta ? static_cast<int>(std::min<std::uint64_t>(meta->delivered, INT32_MAX)) : 1;
  if (auto status = catga::nats::detail::get_header(m, "Status")) {
    (void)catga::nats::detail::parse_status_code(*status);
  }
  NatsDelivery delivery(m, attempt, meta ? meta->stream_seq : 0);
  catga::Context ctx;
  auto event = catga::detail::decode_delivery<fuzz::OrderPlaced>(delivery, ctx);
  // CATGA_FUZZ_VERBOSE=1 explains what became of each input (for a crash artifact).
  static const bool verbose = std::getenv("CATGA_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "decode: %s\n", event ? "ok" : event.error().message.c_str());
  if (event) round_trip(*event, ctx);

  // Dead-lettering copies every header through header_safe.
  std::size_t copied = 0;
  delivery.for_each_header([&](std::string_view, std::string_view v) {
    copied += catga::nats::detail::header_safe(v, 8192).size();
  });
  // A request's reply body goes through decode_reply.
  (void)catga::wire::decode_reply(delivery.body());
  (void)copied;
  return 0;
}
