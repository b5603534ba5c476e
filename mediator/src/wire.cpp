#include "catga/wire.hpp"

#include <charconv>
#include <cstdio>
#include <cstdint>
#include <cstring>

namespace catga::wire {
namespace {

std::string join_subject(std::string_view prefix, std::string_view kind, std::string_view type) {
  std::string s;
  s.reserve(prefix.size() + kind.size() + type.size() + 2);
  s.append(prefix).append(".").append(kind).append(".").append(type);
  return s;
}

// Bounds on the user headers of one message (docs/wire-format.md): a client
// cannot make every consumer hold thousands of them.
constexpr std::size_t kMaxUserHeaders = 64;
constexpr std::size_t kMaxUserHeaderBytes = 64 * 1024;  // names and values

// The headers read_context takes for itself.
enum class Managed : std::uint8_t {
  none, msg_id, type, correlation, causation, traceparent, timeout, content_type, version
};

// Which managed header `k` is: a switch on the length, then compares of a
// known size (run for every header of every consumed message).
Managed classify(std::string_view k) noexcept {
  auto is = [&](std::string_view name) { return std::memcmp(k.data(), name.data(), name.size()) == 0; };
  static_assert(kMsgId.size() == kTraceparent.size());
  switch (k.size()) {
    case kMsgId.size():
      return is(kMsgId) ? Managed::msg_id : is(kTraceparent) ? Managed::traceparent : Managed::none;
    case kType.size():
      return is(kType) ? Managed::type : Managed::none;
    case kCorrelationId.size():
      return is(kCorrelationId) ? Managed::correlation : Managed::none;
    case kCausationId.size():
      return is(kCausationId) ? Managed::causation : Managed::none;
    case kTimeoutMs.size():
      return is(kTimeoutMs) ? Managed::timeout : Managed::none;
    case kContentType.size():
      return is(kContentType) ? Managed::content_type : Managed::none;
    case kMessageVersion.size():
      return is(kMessageVersion) ? Managed::version : Managed::none;
    default:
      return Managed::none;
  }
}

}  // namespace

std::string event_subject(std::string_view prefix, std::string_view type) {
  return join_subject(prefix, "evt", type);
}
std::uint32_t partition_of(std::string_view key, std::uint32_t partitions) noexcept {
  std::uint32_t h = 2166136261u;
  for (unsigned char c : key) h = (h ^ c) * 16777619u;
  return partitions == 0 ? 0 : h % partitions;
}
std::string event_subject(std::string_view prefix, std::string_view type, std::uint32_t partition) {
  std::string s = join_subject(prefix, "evt", type);
  s.push_back('.');
  s.append(std::to_string(partition));
  return s;
}
std::string partition_filter(std::string_view prefix, std::uint32_t partition) {
  return join_subject(prefix, "evt", "*") + "." + std::to_string(partition);
}
std::string command_subject(std::string_view prefix, std::string_view type) {
  return join_subject(prefix, "cmd", type);
}
std::string dead_letter_subject(std::string_view prefix, std::string_view type) {
  return join_subject(prefix, "dlq", type);
}

namespace {

// Why `s` cannot be used in a subject, or nullptr.
const char* subject_flaw(std::string_view s, SubjectPart part) noexcept {
  if (s.empty()) return "it is empty";
  if (s.front() == '$') return "a leading '$' is reserved for system subjects";
  bool token_start = true;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '.') {
      if (part == SubjectPart::token) return "it must be one token, without '.'";
      if (token_start) return "it has an empty token ('..', or '.' at an end)";
      token_start = true;
      continue;
    }
    if (c == '*' || c == '>') return "'*' and '>' are wildcards";
    if (u <= 0x20 || u == 0x7f) return "it contains a space or a control character";
    token_start = false;
  }
  return token_start ? "it has an empty token ('..', or '.' at an end)" : nullptr;
}

// The name as an error message may show it: control bytes escaped, cut at
// 128 bytes (it may come from a hostile client and end up in a log).
std::string shown(std::string_view s) {
  std::string out;
  for (const char c : s.substr(0, 128)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out.append("\\x").push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    } else {
      out.push_back(c);
    }
  }
  if (s.size() > 128) out.append("...");
  return out;
}

}  // namespace

Status check_subject(std::string_view name, std::string_view what, SubjectPart part) {
  const char* flaw = subject_flaw(name, part);
  if (flaw == nullptr) return {};
  return make_error(errc::validation, std::string(what) + " '" + shown(name) + "' cannot be used in a NATS subject: " +
                                          flaw);
}

bool is_managed_header(std::string_view name) noexcept { return classify(name) != Managed::none; }

void write_headers(const Context& ctx, std::string_view type,
                   FunctionRef<void(std::string_view, std::string_view)> put, bool with_deadline, int version) {
  put(kMsgId, ctx.message_id.text());
  put(kType, type);
  if (version > 1) {
    char buf[16];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, version);
    (void)ec;
    put(kMessageVersion, std::string_view(buf, static_cast<std::size_t>(end - buf)));
  }
  if (ctx.correlation_id) put(kCorrelationId, ctx.correlation_id.text());
  if (ctx.causation_id) put(kCausationId, ctx.causation_id.text());
  if (ctx.trace.valid()) put(kTraceparent, ctx.trace.traceparent());
  put(kContentType, kJson);
  if (with_deadline && ctx.has_deadline()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(ctx.remaining()).count();
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, left < 1 ? 1 : left);
    (void)ec;
    put(kTimeoutMs, std::string_view(buf, static_cast<std::size_t>(end - buf)));
  }
  for (const auto& [k, v] : ctx.headers) {
    if (!is_managed_header(k)) put(k, v);
  }
}

namespace {
// What a header name may hold (catga's senders check the same): visible
// ASCII (! to ~) except ':', at least one character.
bool valid_header_name(std::string_view k) noexcept {
  if (k.empty()) return false;
  for (unsigned char c : k) {
    if (c < 0x21 || c > 0x7e || c == ':') return false;
  }
  return true;
}
}  // namespace

Result<Context> read_context(HeaderEach each, std::optional<std::string_view>* type_out, int* version_out) {
  Context ctx;
  std::optional<std::string_view> id_text, type, correlation, causation, traceparent, timeout, original, version;
  bool replayed = false;
  std::optional<std::string_view> bad_name;
  std::size_t user_headers = 0, user_bytes = 0;
  each([&](std::string_view k, std::string_view v) {
    auto first = [&](std::optional<std::string_view>& slot) {
      if (!slot) slot = v;
    };
    switch (classify(k)) {
      case Managed::msg_id: first(id_text); break;
      case Managed::type: first(type); break;
      case Managed::correlation: first(correlation); break;
      case Managed::causation: first(causation); break;
      case Managed::traceparent: first(traceparent); break;
      case Managed::timeout: first(timeout); break;
      case Managed::version: first(version); break;
      case Managed::content_type: break;
      case Managed::none:
        // Not managed: the handler sees it (the replay markers included),
        // up to the bounds; past them the message is refused below.
        ++user_headers;
        user_bytes += k.size() + v.size();
        if (user_headers > kMaxUserHeaders || user_bytes > kMaxUserHeaderBytes) break;
        // A name catga would refuse to send (not visible ASCII, or with ':')
        // cannot be passed on either: the message is refused below.
        if (!bad_name && !valid_header_name(k)) bad_name = k.substr(0, 64);
        if (k == kReplayed) replayed = true;
        // The last value, like the copy kept in ctx.headers: a message
        // re-encoded from this context is read with the same id.
        if (k == kOriginalMsgId) original = v;
        ctx.headers.set(k, v);
        break;
    }
  });
  if (type_out != nullptr) *type_out = type;
  if (user_headers > kMaxUserHeaders || user_bytes > kMaxUserHeaderBytes) {
    ctx.headers = {};
    return make_error(errc::malformed, "too many user headers: " + std::to_string(user_headers) + " headers of " +
                                           std::to_string(user_bytes) + " bytes (at most " +
                                           std::to_string(kMaxUserHeaders) + " headers, " +
                                           std::to_string(kMaxUserHeaderBytes) + " bytes)");
  }

  if (bad_name) {
    ctx.headers = {};
    std::string shown;
    for (unsigned char c : *bad_name) {
      if (c >= 0x21 && c <= 0x7e) {
        shown.push_back(static_cast<char>(c));
      } else {
        char hex[8];
        std::snprintf(hex, sizeof hex, "\\x%02x", c);
        shown += hex;
      }
    }
    return make_error(errc::malformed,
                      "invalid header name '" + shown + "': visible ASCII without ':' is expected");
  }
  if (!id_text) return make_error(errc::malformed, "missing header Nats-Msg-Id");
  auto id = MessageId::parse(*id_text);
  if (!id) return make_error(errc::malformed, "invalid Nats-Msg-Id (1-64 visible ASCII characters, ! to ~, expected: no space)");
  ctx.message_id = *id;
  // A replay republishes under "<original>.r<seq>" to pass the duplicate
  // window; handlers and idempotency keys must still see the original id.
  if (replayed && original) {
    if (auto oid = MessageId::parse(*original)) ctx.message_id = *oid;
  }
  if (!type) return make_error(errc::malformed, "missing header Catga-Type");

  if (correlation) {
    // A first message is its own correlation: the same text, parsed once.
    auto cid = *correlation == *id_text ? id : MessageId::parse(*correlation);
    if (!cid) return make_error(errc::malformed, "invalid Catga-Correlation-Id");
    ctx.correlation_id = *cid;
  } else {
    ctx.correlation_id = ctx.message_id;
  }
  if (causation) {
    auto cid = MessageId::parse(*causation);
    if (!cid) return make_error(errc::malformed, "invalid Catga-Causation-Id");
    ctx.causation_id = *cid;
  }
  // An unparseable traceparent is ignored (W3C: restart the trace), not fatal.
  if (traceparent) {
    if (auto tc = TraceContext::parse(*traceparent)) ctx.trace = *tc;
  }
  if (!ctx.trace.valid()) {
    auto fresh = Context::root();
    ctx.trace = fresh.trace;
  }
  if (timeout) {
    // Range-checked before any arithmetic: a huge value would overflow the
    // clock's nanoseconds (undefined behaviour, found by the fuzz target).
    long long ms = 0;
    auto [p, ec] = std::from_chars(timeout->data(), timeout->data() + timeout->size(), ms);
    if (ec != std::errc() || p != timeout->data() + timeout->size() || ms < 0 || ms > kMaxTimeoutMs) {
      return make_error(errc::malformed, "invalid Catga-Timeout-Ms '" + std::string(timeout->substr(0, 32)) +
                                             "': an integer from 0 to " + std::to_string(kMaxTimeoutMs) +
                                             " (milliseconds) is expected");
    }
    ctx.deadline = Context::Clock::now() + std::chrono::milliseconds(ms);
  }
  if (version) {
    int v = 0;
    auto [p, ec] = std::from_chars(version->data(), version->data() + version->size(), v);
    if (ec != std::errc() || p != version->data() + version->size() || v < 1) {
      return make_error(errc::malformed, "invalid Catga-Message-Version '" + std::string(version->substr(0, 32)) +
                                             "': an integer from 1 to 2147483647 is expected");
    }
    if (version_out != nullptr) *version_out = v;
  } else if (version_out != nullptr) {
    *version_out = 1;
  }
  return ctx;
}

std::string encode_reply(const Status& status, const nlohmann::json* value) {
  nlohmann::json j;
  if (status) {
    j["ok"] = true;
    if (value != nullptr) j["value"] = *value;
  } else {
    j["ok"] = false;
    j["error"] = {{"code", status.error().code},
                  {"message", status.error().message},
                  {"retryable", status.error().retryable}};
    // A deferral says when to come back (the owner's lease): the caller's
    // retry waits that long instead of its own backoff.
    if (status.error().retry_after.count() > 0) j["error"]["retry_after_ms"] = status.error().retry_after.count();
  }
  return dump_json(j);
}

Result<nlohmann::json> parse_json(std::string_view body) {
  nlohmann::json fast;
  if (parse_json_fast(body, fast)) return fast;
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return make_error(errc::malformed, "body is not valid JSON (" + std::to_string(body.size()) + " bytes)");
  }
  return j;
}

Result<nlohmann::json> decode_reply(std::string_view body) {
  auto parsed = parse_json(body);
  if (!parsed) return make_error(errc::malformed, "reply " + parsed.error().message);
  const auto& j = *parsed;
  if (!j.is_object() || !j.contains("ok") || !j["ok"].is_boolean()) {
    return make_error(errc::malformed, "reply has no boolean \"ok\" field");
  }
  if (j["ok"].get<bool>()) return j.contains("value") ? j["value"] : nlohmann::json();
  const auto& e = j.contains("error") ? j["error"] : nlohmann::json::object();
  Error err;
  err.code = e.is_object() && e.contains("code") && e["code"].is_string() ? e["code"].get<std::string>()
                                                                          : std::string(errc::internal);
  err.message = e.is_object() && e.contains("message") && e["message"].is_string()
                    ? e["message"].get<std::string>()
                    : std::string("remote handler failed without a message");
  err.retryable = e.is_object() && e.contains("retryable") && e["retryable"].is_boolean() && e["retryable"].get<bool>();
  if (e.is_object() && e.contains("retry_after_ms") && e["retry_after_ms"].is_number_integer()) {
    // Bounded like Catga-Timeout-Ms: a reply cannot make a caller wait past a day.
    const auto ms = e["retry_after_ms"].get<std::int64_t>();
    if (ms > 0 && ms <= kMaxTimeoutMs) err.retry_after = std::chrono::milliseconds(ms);
  }
  return err;
}

}  // namespace catga::wire
