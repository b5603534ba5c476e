#include "catga/pipeline/idempotency.hpp"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <array>

namespace catga {
namespace {

// Mixed into the high half of a binary id to key the in-memory store's fast
// path: the same id under two message types is two keys. (The slot is
// unique per type within the process, and so is that store.)
std::uint64_t type_tag(const MessageInfo& info) noexcept {
  return (static_cast<std::uint64_t>(info.slot) + 1) * 0x9E3779B97F4A7C15ull;
}

// Builds "<Type>:<handler_key>:<id>" ("<Type>:<id>" for commands and
// queries) on the stack when it fits (it almost always does), so a lookup
// allocates nothing. The key names what handles the message, so an id
// reused by another type or consumed by another group is another key.
class KeyBuffer {
 public:
  void assign(std::string_view type, std::string_view handler, std::string_view id) {
    std::copy(id.begin(), id.end(), reserve(type, handler, id.size()));
  }

  // The same text as id.text(), written straight into the buffer: a binary
  // id is its 32 hex digits (hi then lo).
  void assign(std::string_view type, std::string_view handler, const MessageId& id) {
    if (!id.is_binary()) return assign(type, handler, id.text().view());
    write_binary(reserve(type, handler, 32), id.hi(), id.lo());
  }

  // The 32 hex digits alone: the key an id path's entry is found under
  // (IdempotencyIdPath), the high half carrying the type_tag.
  void assign_tagged(const MessageId& id, std::uint64_t tag) { write_binary(reserve({}, {}, 32), id.hi() ^ tag, id.lo()); }

  std::string_view view() const noexcept { return view_; }

 private:
  static void write_binary(char* out, std::uint64_t hi, std::uint64_t lo) noexcept {
    append_hex_u64(out, hi);  // catga/message_id.hpp: the same text as MessageId::text()
    append_hex_u64(out + 16, lo);
  }

  // Makes room for the "<type>:<handler>:" part + n bytes, writes that part
  // and returns where the id goes.
  char* reserve(std::string_view type, std::string_view handler, std::size_t n) {
    std::size_t total = n;
    if (!type.empty()) total += type.size() + 1;
    if (!handler.empty()) total += handler.size() + 1;
    char* p;
    if (total <= inline_.size()) {
      p = inline_.data();
    } else {
      heap_.resize(total);
      p = heap_.data();
    }
    view_ = std::string_view(p, total);
    for (const std::string_view part : {type, handler}) {
      if (part.empty()) continue;
      p = std::copy(part.begin(), part.end(), p);
      *p++ = ':';
    }
    return p;
  }

  std::array<char, 192> inline_;
  std::string heap_;
  std::string_view view_;
};

// Added to a deferral's retry_after, so the redelivery finds the owner's
// lease run out (its clock and ours differ a little).
constexpr std::chrono::milliseconds kTakeoverMargin{1000};

// Releases the claim if the rest of the pipeline throws (a behavior, not a
// handler: handler exceptions already come back as Errors).
struct ReleaseOnUnwind {
  IdempotencyStore& store;
  std::string_view key;
  std::uint64_t token;
  bool armed = true;
  ~ReleaseOnUnwind() {
    if (armed) (void)store.release(key, token);
  }
};

}  // namespace

std::function<std::string(const Invocation&)> IdempotencyOptions::header_key(std::string name) {
  return [name = std::move(name)](const Invocation& inv) -> std::string {
    if (auto v = inv.context.headers.get(name); v && !v->empty()) return std::string(*v);
    return inv.context.message_id ? inv.context.message_id.text().str() : std::string();
  };
}

IdempotencyBehavior::IdempotencyBehavior(IdempotencyOptions options) : options_(std::move(options)) {
  if (!options_.store) throw Exception(make_error(errc::internal, "IdempotencyBehavior needs a store"));
  if (!options_.clock) options_.clock = Clock::system();
  if (!options_.key) id_path_ = options_.store->id_path();
}

IdempotencyBehavior::IdempotencyBehavior(std::shared_ptr<IdempotencyStore> store)
    : IdempotencyBehavior(IdempotencyOptions{.store = std::move(store)}) {}

Status IdempotencyBehavior::handle(Invocation& inv, Next next) {
  const MessageInfo& info = inv.info;
  if (info.kind == MessageKind::query && !options_.include_queries) return next();
  // A result we cannot store could not be replayed to a duplicate.
  if (inv.result != nullptr && (info.encode_result == nullptr || info.decode_result == nullptr)) return next();

  // Fast path: a store with an id path (an in-process one) and a generated
  // (binary) id, the common case for commands. Duplicates take the general
  // path below, which finds the same entry through the id's text.
  if (id_path_ != nullptr && inv.handler_key.empty() && inv.context.message_id.is_binary() &&
      inv.context.message_id) {
    const MessageId& id = inv.context.message_id;
    const auto claim = id_path_->claim_id(id.hi() ^ type_tag(info), id.lo(), options_.lease);
    if (claim.state == IdempotencyClaim::State::claimed) {
      struct Release {
        IdempotencyIdPath& ids;
        const IdempotencyIdPath::Claim& claim;
        bool armed = true;
        ~Release() {
          if (armed) ids.release_id(claim);
        }
      } guard{*id_path_, claim};
      Status s = next();
      const Error* failure = nullptr;
      if (!s) {
        if (!options_.remember_failures || s.error().retryable) return s;  // guard releases
        failure = &s.error();
      }
      Status stored = id_path_->complete_id(claim, failure, inv.result != nullptr ? info.encode_result : nullptr,
                                            inv.result, options_.ttl);
      guard.armed = false;
      if (!stored) {
        spdlog::warn("catga idempotency: outcome of '{}' (key '{}') not stored: {}: {}", info.name,
                     id.text().view(), stored.error().code, stored.error().message);
      }
      return s;
    }
  }

  KeyBuffer key;
  std::string custom;
  if (options_.key) {
    custom = options_.key(inv);
    if (custom.empty()) return next();
    key.assign(info.name, inv.handler_key, custom);
  } else {
    if (!inv.context.message_id) return next();
    if (id_path_ != nullptr && inv.handler_key.empty() && inv.context.message_id.is_binary()) {
      key.assign_tagged(inv.context.message_id, type_tag(info));  // the fast path's entry
    } else {
      key.assign(info.name, inv.handler_key, inv.context.message_id);
    }
  }

  auto claim = options_.store->claim(key.view(), options_.lease);
  if (!claim) return std::move(claim).error();
  if (claim->state == IdempotencyClaim::State::in_progress) {
    const auto now = options_.clock->now();
    const auto wait_end = options_.wait_timeout >= Clock::time_point::max() - now ? Clock::time_point::max()
                                                                                  : now + options_.wait_timeout;
    const auto deadline = std::min(wait_end, inv.context.deadline);
    claim = options_.store->wait(key.view(), options_.lease, deadline);
    if (!claim) return std::move(claim).error();
    if (claim->state == IdempotencyClaim::State::in_progress) {
      // Deferred, not failed, whether the wait ended at wait_timeout or at
      // the context's deadline (a consumer's handler timeout): a transport
      // redelivers it once the owner's lease has run out (then it is ours to
      // take over, if the owner died) and does not count it against
      // max_deliver. As `timeout` it did count: a crashed owner's message
      // was dead-lettered before its lease ran out.
      const char* why = inv.context.deadline <= wait_end ? "deadline passed while a duplicate of '" : "a duplicate of '";
      Error deferred = make_error(errc::deferred,
                                  why + std::string(info.name) + "' (key '" + std::string(key.view()) +
                                      "') is still being handled",
                                  true);
      if (claim->lease_left.count() > 0) {
        deferred.retry_after = std::chrono::ceil<std::chrono::milliseconds>(claim->lease_left) + kTakeoverMargin;
      }
      return deferred;
    }
  }
  if (claim->state == IdempotencyClaim::State::completed) {
    if (!claim->outcome) {
      return make_error(errc::internal,
                        "idempotency store reported '" + std::string(key.view()) + "' completed without an outcome");
    }
    return replay(inv, *claim->outcome);
  }
  return run_owned(inv, next, key.view(), claim->token);
}

Status IdempotencyBehavior::run_owned(Invocation& inv, Next next, std::string_view key, std::uint64_t token) {
  IdempotencyStore& store = *options_.store;
  ReleaseOnUnwind guard{store, key, token};
  const auto claimed_at = options_.clock->now();
  Status s = next();

  IdempotencyOutcome outcome;
  if (s) {
    if (inv.result != nullptr) inv.info.encode_result(outcome.value, inv.result);
  } else if (options_.remember_failures && !s.error().retryable) {
    outcome.error = s.error();
  } else {
    guard.armed = false;
    (void)store.release(key, token);
    return s;
  }
  guard.armed = false;
  // The handler's work is done; failing now would invite a second run. While
  // our claim's lease runs nobody else may apply the effect, so a store that
  // is briefly unreachable (a broker restart, a leader election) is retried
  // until 3/4 of the lease has passed, leaving a margin before a duplicate
  // could take the claim over.
  const auto give_up = claimed_at + options_.lease / 4 * 3;
  auto pause = std::chrono::nanoseconds(std::chrono::milliseconds(20));
  Status stored = store.complete(key, token, outcome, options_.ttl);
  while (!stored && stored.error().retryable) {
    const auto now = options_.clock->now();
    if (now >= give_up) break;
    options_.clock->sleep_for(std::min(pause, give_up - now));
    pause = std::min<std::chrono::nanoseconds>(pause * 2, std::chrono::milliseconds(500));
    stored = store.complete(key, token, outcome, options_.ttl);
  }
  if (!stored) {
    // A duplicate may still run once the store loses the claim: say so.
    spdlog::warn("catga idempotency: outcome of '{}' (key '{}') not stored: {}: {}", inv.info.name, key,
                 stored.error().code, stored.error().message);
  }
  return s;
}

Status IdempotencyBehavior::replay(Invocation& inv, const IdempotencyOutcome& outcome) {
  if (outcome.error) return *outcome.error;
  if (inv.result != nullptr && !inv.info.decode_result(outcome.value, inv.result)) {
    return make_error(errc::internal,
                      "stored result of '" + std::string(inv.info.name) + "' does not decode into its result type");
  }
  return {};
}

}  // namespace catga
