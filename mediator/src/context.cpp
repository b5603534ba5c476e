#include "catga/context.hpp"

#include <algorithm>

#include "codec/ascii_digits.hpp"

namespace catga {

using detail::new_span_id;

namespace {

// Two lowercase hex digits (the version and flags of a traceparent).
bool lower_hex_byte(const char* p, int& out) noexcept {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int h = nibble(p[0]);
  const int l = nibble(p[1]);
  out = h * 16 + l;
  return h >= 0 && l >= 0;
}

}  // namespace

IdText TraceContext::traceparent() const noexcept {
  IdText out;
  char* p = out.chars.data();
  p[0] = '0';
  p[1] = '0';
  p[2] = '-';
  append_hex_u64(p + 3, trace_hi);
  append_hex_u64(p + 19, trace_lo);
  p[35] = '-';
  append_hex_u64(p + 36, span_id);
  p[52] = '-';
  const unsigned char f = flags;
  append_hex(p + 53, &f, 1);
  out.size = 55;
  return out;
}

std::optional<TraceContext> TraceContext::parse(std::string_view s) noexcept {
  // version "00" has exactly this shape; later versions may append fields
  // after a dash. Every hex field is lowercase (W3C trace-context).
  if (s.size() < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-') return std::nullopt;
  // version-traceid-parentid-flags, every field lowercase hex.
  int version = 0, flags = 0;
  std::uint64_t hi = 0, lo = 0, span = 0;
  if (!lower_hex_byte(s.data(), version) || !ascii::lower_hex16(s.data() + 3, hi) ||
      !ascii::lower_hex16(s.data() + 19, lo) || !ascii::lower_hex16(s.data() + 36, span) ||
      !lower_hex_byte(s.data() + 53, flags)) {
    return std::nullopt;
  }
  if (version == 0xff) return std::nullopt;
  if (version == 0 && s.size() != 55) return std::nullopt;
  if (s.size() > 55 && s[55] != '-') return std::nullopt;
  if ((hi | lo) == 0 || span == 0) return std::nullopt;
  TraceContext tc;
  tc.trace_hi = hi;
  tc.trace_lo = lo;
  tc.parent_span_id = span;
  tc.span_id = new_span_id();
  tc.flags = static_cast<std::uint8_t>(flags);
  return tc;
}

void Headers::set(std::string_view key, std::string_view value) {
  for (auto& [k, v] : entries_) {
    if (k == key) {
      v.assign(value);
      return;
    }
  }
  entries_.emplace_back(std::string(key), std::string(value));
}

std::optional<std::string_view> Headers::get(std::string_view key) const noexcept {
  for (const auto& [k, v] : entries_) {
    if (k == key) return std::string_view(v);
  }
  return std::nullopt;
}

bool Headers::erase(std::string_view key) noexcept {
  auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.first == key; });
  if (it == entries_.end()) return false;
  entries_.erase(it);
  return true;
}

namespace {
constexpr std::string_view wire_tracestate = "tracestate";  // wire::kTracestate
}  // namespace

Context Context::child() const noexcept {
  Context ctx;
  ctx.message_id = MessageId::generate();
  ctx.correlation_id = correlation_id ? correlation_id : message_id;
  ctx.causation_id = message_id;
  if (trace.valid()) {
    ctx.trace.trace_hi = trace.trace_hi;
    ctx.trace.trace_lo = trace.trace_lo;
    ctx.trace.flags = trace.flags;
    ctx.trace.parent_span_id = trace.span_id;
  } else {
    ctx.trace.trace_hi = detail::random_u64();
    ctx.trace.trace_lo = detail::random_nonzero_u64();
  }
  ctx.trace.span_id = new_span_id();
  ctx.deadline = deadline;
  // tracestate belongs to the trace (W3C): it travels with it. Other
  // headers are the caller's to pass on (see the header comment).
  if (!headers.empty()) {
    if (auto state = headers.get(wire_tracestate)) {
      try {
        ctx.headers.set(wire_tracestate, *state);
      } catch (...) {
        // out of memory: the child goes without it
      }
    }
  }
  return ctx;
}

Context::Clock::duration Context::remaining(Clock::time_point now) const noexcept {
  if (!has_deadline()) return Clock::duration::max();
  return now >= deadline ? Clock::duration::zero() : deadline - now;
}

}  // namespace catga
