#pragma once
// The wire format shared by every transport (normative text: docs/wire-format.md).

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
// Added to dead-letter copies.
inline constexpr std::string_view kError = "Catga-Error";
inline constexpr std::string_view kErrorCode = "Catga-Error-Code";
inline constexpr std::string_view kDeliveries = "Catga-Deliveries";
inline constexpr std::string_view kOriginalSubject = "Catga-Original-Subject";
inline constexpr std::string_view kOriginalSeq = "Catga-Original-Seq";
// Added to copies replayed from the dead-letter stream.
inline constexpr std::string_view kReplayed = "Catga-Replayed";

inline constexpr std::string_view kJson = "application/json";

// Subjects: <prefix>.evt.<Type>, <prefix>.cmd.<Type>, <prefix>.dlq.<Type>.
std::string event_subject(std::string_view prefix, std::string_view type);
std::string command_subject(std::string_view prefix, std::string_view type);
std::string dead_letter_subject(std::string_view prefix, std::string_view type);

// Writes the headers of `ctx` (managed ones first, then ctx.headers) through
// `put(name, value)`. Values are only valid during the call.
void write_headers(const Context& ctx, std::string_view type,
                   FunctionRef<void(std::string_view, std::string_view)> put);

// Rebuilds a Context from received headers. `get(name)` returns the value or
// nullopt; `each(visit)` visits every header (for the user headers).
// Fails with `malformed` when Nats-Msg-Id or Catga-Type is missing or invalid.
using HeaderGet = FunctionRef<std::optional<std::string_view>(std::string_view)>;
using HeaderVisitor = FunctionRef<void(std::string_view, std::string_view)>;
using HeaderEach = FunctionRef<void(HeaderVisitor)>;
Result<Context> read_context(HeaderGet get, HeaderEach each);

// True for the headers catga manages itself (not copied into ctx.headers).
bool is_managed_header(std::string_view name) noexcept;

// Reply bodies of remote commands and queries:
//   {"ok":true,"value":...}   {"ok":true}   {"ok":false,"error":{"code":..,"message":..,"retryable":..}}
std::string encode_reply(const Status& status, const nlohmann::json* value);
// Parses a reply; on {"ok":true} returns the value (null when absent).
Result<nlohmann::json> decode_reply(std::string_view body);

// Parses a JSON body; a clear `malformed` Error instead of an exception.
Result<nlohmann::json> parse_json(std::string_view body);

}  // namespace catga::wire
