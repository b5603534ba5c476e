#pragma once
// The wire format shared by every transport (normative text: docs/wire-format.md).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "catga/context.hpp"
#include "catga/function_ref.hpp"
#include "catga/message.hpp"
#include "catga/result.hpp"

namespace catga::wire {

// Header names.
inline constexpr std::string_view kMsgId = "Nats-Msg-Id";
inline constexpr std::string_view kType = "Catga-Type";
inline constexpr std::string_view kCorrelationId = "Catga-Correlation-Id";
inline constexpr std::string_view kCausationId = "Catga-Causation-Id";
inline constexpr std::string_view kTraceparent = "traceparent";
inline constexpr std::string_view kTracestate = "tracestate";
inline constexpr std::string_view kContentType = "Content-Type";
inline constexpr std::string_view kTimeoutMs = "Catga-Timeout-Ms";
// The largest Catga-Timeout-Ms read_context accepts (one day); larger,
// negative or non-numeric values are `malformed`.
inline constexpr long long kMaxTimeoutMs = 86'400'000;
// The version of the body (CATGA_VERSION), written when above 1; absent
// means 1. A value that is not a decimal integer from 1 to 2^31-1 is
// `malformed`.
inline constexpr std::string_view kMessageVersion = "Catga-Message-Version";
// The ordering key of a keyed event (CATGA_ORDERING_KEY, or set by the
// publisher). Not inherited by child messages.
inline constexpr std::string_view kOrderingKey = "Catga-Ordering-Key";
// Added to dead-letter copies.
inline constexpr std::string_view kError = "Catga-Error";
inline constexpr std::string_view kErrorCode = "Catga-Error-Code";
inline constexpr std::string_view kDeliveries = "Catga-Deliveries";
inline constexpr std::string_view kOriginalSubject = "Catga-Original-Subject";
inline constexpr std::string_view kOriginalSeq = "Catga-Original-Seq";
inline constexpr std::string_view kOriginalMsgId = "Catga-Original-Msg-Id";
inline constexpr std::string_view kGroup = "Catga-Group";
// On a dead-letter copy whose body was cut to fit the server's max payload:
// the original body size in bytes.
inline constexpr std::string_view kBodyTruncated = "Catga-Body-Truncated";
// Added to copies replayed from the dead-letter stream; the value is the
// dead-letter sequence. A replayed copy has its own Nats-Msg-Id (so the
// stream's duplicate window keeps it) and read_context takes the message id
// from Catga-Original-Msg-Id instead, so idempotency keys match the original.
inline constexpr std::string_view kReplayed = "Catga-Replayed";
// Marks a dead letter as a commit of the event store that consumer <value>
// (a projection or the relay) could not read. `catga dlq replay` refuses
// these (replaying would append a second commit); the fix is an upcaster,
// then a projection rebuild.
inline constexpr std::string_view kEsConsumer = "Catga-Es-Consumer";

inline constexpr std::string_view kJson = "application/json";

// Subjects: <prefix>.evt.<Type>, <prefix>.cmd.<Type>, <prefix>.dlq.<Type>.
std::string event_subject(std::string_view prefix, std::string_view type);
std::string command_subject(std::string_view prefix, std::string_view type);
std::string dead_letter_subject(std::string_view prefix, std::string_view type);

// Keyed events: <prefix>.evt.<Type>.<partition>, partition =
// partition_of(key, partitions): FNV-1a (32-bit) of the key's bytes modulo
// the partition count, in decimal. A client in another language computes
// the same (docs/wire-format.md, "Keyed events").
//
//   wire::partition_of("A-1", 16)   // 0..15, the same in every process
std::uint32_t partition_of(std::string_view key, std::uint32_t partitions) noexcept;
std::string event_subject(std::string_view prefix, std::string_view type, std::uint32_t partition);
// What one partition's consumer of an ordered group reads: every keyed type
// of that partition, <prefix>.evt.*.<partition>.
std::string partition_filter(std::string_view prefix, std::uint32_t partition);

// What check_subject accepts: a subject or part of one (tokens joined by
// '.'), or a single token (stream, consumer and queue group names).
enum class SubjectPart { subject, token };

// Checks a name a user or a remote party controls before it becomes (part
// of) a subject that is published to or subscribed on: a message type, an
// aggregate id, a relayed event type, a prefix, a stream name. Tokens are
// non-empty (no "a..b", no '.' at an end); no '*' or '>' (wildcards), no
// space or control character; no leading '$' (system subjects such as
// $JS.API.…). nats.c 3.4.1 publishes any subject as given. A bad name is a
// `validation` Error naming `what`, the name (escaped) and the reason; a
// good one costs a scan, no allocation.
//
//   if (auto v = wire::check_subject(type, "message type"); !v) return v;
Status check_subject(std::string_view name, std::string_view what, SubjectPart part = SubjectPart::subject);

// Writes the headers of `ctx` (managed ones first, then ctx.headers) through
// `put(name, value)`. Values are only valid during the call. The deadline
// (Catga-Timeout-Ms) only with `with_deadline`: requests carry it, events do
// not (a stored event outlives the request that published it; consumers
// apply their own handler timeout), see deadline_travels().
// Catga-Message-Version only when `version` is above 1 (MessageInfo::version).
void write_headers(const Context& ctx, std::string_view type,
                   FunctionRef<void(std::string_view, std::string_view)> put, bool with_deadline = true,
                   int version = 1);
// Whether a message of this kind carries the sender's deadline: commands and
// queries yes, events no.
constexpr bool deadline_travels(MessageKind kind) noexcept { return kind != MessageKind::event; }

// Rebuilds a Context from received headers in one pass: `each(visit)`
// visits every header of the message, managed ones included, in wire order
// (the first value of a managed header counts; the others become
// ctx.headers). Fails with `malformed` when Nats-Msg-Id or Catga-Type is
// missing or invalid. For a replayed copy (Catga-Replayed present) whose
// Catga-Original-Msg-Id is a valid MessageId, ctx.message_id is that
// original id. When `type` is given it receives Catga-Type's value, also when
// reading fails (a receiver reports a wrong type before anything else).
// When `version` is given it receives Catga-Message-Version (1 when absent);
// an invalid value is `malformed` either way.
//
//   auto ctx = wire::read_context([&](wire::HeaderVisitor v) { for (auto& [k, x] : hdrs) v(k, x); });
using HeaderVisitor = FunctionRef<void(std::string_view, std::string_view)>;
using HeaderEach = FunctionRef<void(HeaderVisitor)>;
Result<Context> read_context(HeaderEach each, std::optional<std::string_view>* type = nullptr,
                             int* version = nullptr);

// The number of decimal digits ('0'..'9') at the front of `s`; when that is
// 1 to 19 (a count that fits in 64 bits), `value` receives their value.
// For transports reading counts out of their own protocol (JetStream ack
// subjects); out of line, the fast digit reading is private.
//
//   std::uint64_t n = 0;
//   std::size_t k = wire::read_count("42.7", n);   // k == 2, n == 42
std::size_t read_count(std::string_view s, std::uint64_t& value) noexcept;

// True for the headers catga manages itself (not copied into ctx.headers).
bool is_managed_header(std::string_view name) noexcept;

// Reply bodies of remote commands and queries:
//   {"ok":true,"value":...}   {"ok":true}   {"ok":false,"error":{"code":..,"message":..,"retryable":..}}
std::string encode_reply(const Status& status, const nlohmann::json* value);
// Parses a reply; on {"ok":true} returns the value (null when absent).
Result<nlohmann::json> decode_reply(std::string_view body);

// Parses a JSON body; a clear `malformed` Error instead of an exception.
// Accepts exactly what nlohmann::json::parse accepts, with the same values.
Result<nlohmann::json> parse_json(std::string_view body);

// parse_json's fast path: true when `body` has the common shape of message
// bodies (no escapes or non-ASCII bytes in strings, integers only) and was
// parsed into `out`; false leaves the decision to nlohmann's parser.
bool parse_json_fast(std::string_view body, nlohmann::json& out);

// Exactly j.dump()'s text (compact, nlohmann's escaping and number format),
// with plain ASCII strings and integers written without nlohmann's
// per-character UTF-8 pass. Throws what j.dump() throws (invalid UTF-8).
std::string dump_json(const nlohmann::json& j);

}  // namespace catga::wire
