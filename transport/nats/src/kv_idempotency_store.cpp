#include "catga/nats/kv_idempotency_store.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <random>
#include <thread>

#include "connection_impl.hpp"
#include "error.hpp"
#include "handle.hpp"
#include "kv_leader.hpp"
#include "kv_open.hpp"
#include "log.hpp"

namespace catga::nats {

using detail::Surface;
using detail::to_error;

struct KvIdempotencyStore::Impl {
  std::shared_ptr<Connection> connection;
  KvIdempotencyOptions options;
  detail::KvBinding binding;  // own context: its Wait is options.timeout
  // Leader reads and conditional writes, as KvBucket's: what happened to a
  // create or update is decided from the server's answers and the stream
  // leader's copy, never from a (possibly lagging) replica.
  detail::KvLeader leader;
};

namespace {

constexpr int kMaxRounds = 8;

// The in-progress marker. Its age comes from the server's timestamp of the
// entry, so instances need not agree on a clock more than roughly.
// `owner` is a random nonce of this claim call: when a create times out but
// did reach the server, reading the key back shows the marker is ours.
std::string marker(std::chrono::nanoseconds lease, const std::string& owner) {
  const auto ms = std::max<std::int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(lease).count(), 1);
  return R"({"claim":"in_progress","lease_ms":)" + std::to_string(ms) + R"(,"owner":")" + owner + "\"}";
}

std::string new_owner() {
  thread_local std::mt19937_64 rng{std::random_device{}() ^ static_cast<std::uint64_t>(
                                                               std::chrono::steady_clock::now().time_since_epoch().count())};
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

struct Parsed {
  bool in_progress = false;
  std::int64_t lease_ms = 0;
  std::string owner;
  std::optional<IdempotencyOutcome> outcome;
};

Result<Parsed> parse_value(std::string_view bytes) {
  auto j = nlohmann::json::parse(bytes, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("claim")) {
    Parsed p;
    p.in_progress = true;
    if (j.contains("lease_ms") && j["lease_ms"].is_number_integer()) p.lease_ms = j["lease_ms"].get<std::int64_t>();
    if (j.contains("owner") && j["owner"].is_string()) p.owner = j["owner"].get<std::string>();
    return p;
  }
  auto outcome = decode_outcome(bytes);
  if (!outcome) return std::move(outcome).error();
  Parsed p;
  p.outcome = std::move(*outcome);
  return p;
}

// How much of the lease of the claim stored at `created_ns` (the server's
// timestamp of the message) is left (<= 0: expired).
std::chrono::nanoseconds lease_left(std::int64_t created_ns, std::int64_t lease_ms) {
  const std::int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
  return std::chrono::nanoseconds(lease_ms * 1'000'000 - (now_ns - created_ns));
}

}  // namespace

std::string KvIdempotencyStore::encode_key(std::string_view key) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(key.size() + 8);
  for (unsigned char c : key) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (ok) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('=');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  if (out.empty()) out = "=";
  return out;
}

KvIdempotencyStore::KvIdempotencyStore(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
KvIdempotencyStore::~KvIdempotencyStore() = default;

const KvIdempotencyOptions& KvIdempotencyStore::options() const noexcept { return impl_->options; }

Result<std::shared_ptr<KvIdempotencyStore>> KvIdempotencyStore::create(std::shared_ptr<Connection> connection,
                                                                       KvIdempotencyOptions options) {
  if (!connection) return make_error(errc::validation, "KvIdempotencyStore: no connection");
  if (options.bucket.empty()) return make_error(errc::validation, "KvIdempotencyStore: empty bucket name");
  auto impl = std::make_unique<Impl>();
  impl->connection = std::move(connection);
  impl->options = std::move(options);
  const auto& o = impl->options;
  auto binding = detail::open_kv(*impl->connection, {.bucket = o.bucket,
                                                     .description = "catga idempotency keys",
                                                     .history = 1,
                                                     .ttl = o.ttl,
                                                     .storage = o.storage,
                                                     .replicas = o.replicas,
                                                     .timeout = o.timeout,
                                                     .allow_replicated_before_nats_2_10 =
                                                         o.allow_replicated_before_nats_2_10});
  if (!binding) return std::move(binding).error();
  impl->binding = std::move(*binding);
  impl->leader = detail::KvLeader(*impl->connection, impl->binding.js.get(), o.bucket, o.timeout, o.ttl);
  return std::shared_ptr<KvIdempotencyStore>(new KvIdempotencyStore(std::move(impl)));
}

Result<IdempotencyClaim> KvIdempotencyStore::claim(std::string_view key, duration lease) {
  const std::string k = encode_key(key);
  const std::string owner = new_owner();
  const std::string mark = marker(lease, owner);
  const auto& leader = impl_->leader;
  Error last = make_error(errc::conflict, "idempotency key '" + std::string(key) + "' keeps changing", true);
  for (int round = 0; round < kMaxRounds; ++round) {
    // Create-if-absent (also over the delete marker a release leaves).
    auto created = leader.create(k, mark);
    if (created) return IdempotencyClaim{IdempotencyClaim::State::claimed, *created, std::nullopt};
    // `conflict`: the key holds something. A retryable `timeout`: our marker
    // may be stored (recognised below by its owner). Anything else: the
    // store cannot be reached or refuses.
    if (created.error().code != errc::conflict && !created.error().retryable) return std::move(created).error();
    last = std::move(created).error();
    last.message = "claim idempotency key '" + std::string(key) + "': " + last.message;

    // What is there, as the stream leader holds it.
    auto held = leader.read_last_until(k, detail::KvLeader::Clock::now() + impl_->options.timeout);
    if (!held) return std::move(held).error();
    if (!*held || (*held)->deleted) continue;  // released or expired in between
    const detail::KvStored& entry = **held;
    auto parsed = parse_value(entry.value);
    if (!parsed) {
      return make_error(errc::internal, "idempotency key '" + std::string(key) + "' holds an unreadable value: " +
                                            parsed.error().message);
    }
    if (parsed->outcome) {
      return IdempotencyClaim{IdempotencyClaim::State::completed, entry.revision, std::move(parsed->outcome)};
    }
    if (parsed->owner == owner) {
      // Our own create (or take-over) went through although its answer was lost.
      return IdempotencyClaim{IdempotencyClaim::State::claimed, entry.revision, std::nullopt};
    }
    if (const auto left = lease_left(entry.time_ns, parsed->lease_ms); left.count() >= 0) {
      return IdempotencyClaim{IdempotencyClaim::State::in_progress, entry.revision, std::nullopt, left};
    }
    // The owner's lease ran out (crashed): take it over, if nobody else did.
    // Take-overs of the same revision are stored once at most (KvLeader).
    auto taken = leader.write(k, mark, entry.revision);
    if (taken) {
      detail::log().info("catga.nats took over the expired idempotency claim '{}'", key);
      return IdempotencyClaim{IdempotencyClaim::State::claimed, *taken, std::nullopt};
    }
    if (taken.error().code != errc::conflict && !taken.error().retryable) return std::move(taken).error();
    last = std::move(taken).error();  // look again: the next round recognises our own marker
  }
  return last;
}

Result<IdempotencyClaim> KvIdempotencyStore::wait(std::string_view key, duration lease, time_point deadline) {
  while (true) {
    auto c = claim(key, lease);
    if (!c || c->state != IdempotencyClaim::State::in_progress) return c;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return c;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(impl_->options.poll_interval, deadline - now));
  }
}

Status KvIdempotencyStore::complete(std::string_view key, std::uint64_t token, IdempotencyOutcome outcome,
                                    duration) {
  const std::string k = encode_key(key);
  const std::string value = encode_outcome(outcome);
  // A lost answer of a stored update is recognised by the write itself; a
  // retryable `timeout` says it may be stored (complete() again decides).
  auto stored = impl_->leader.write(k, value, token);
  if (stored) return {};
  if (stored.error().code != errc::conflict) {
    Error failure = std::move(stored).error();
    failure.message = "store the outcome of idempotency key '" + std::string(key) + "': " + failure.message;
    return failure;
  }
  // The key is not at our revision: our outcome stored by an earlier call
  // whose answer was lost, or the claim was lost. The leader's copy says.
  auto held = impl_->leader.read_last_until(k, detail::KvLeader::Clock::now() + impl_->options.timeout);
  if (!held) return std::move(held).error();
  if (*held && !(*held)->deleted && (*held)->revision > token && (*held)->value == value) return {};
  return make_error(errc::conflict,
                    "idempotency claim on '" + std::string(key) + "' was lost (released or taken over)");
}

Status KvIdempotencyStore::release(std::string_view key, std::uint64_t token) {
  const std::string subject = impl_->leader.subject_of(encode_key(key));
  detail::MsgHandle msg;
  if (natsStatus s = natsMsg_Create(msg.out(), subject.c_str(), nullptr, nullptr, 0); s != NATS_OK) {
    return to_error(s, "release idempotency key");
  }
  natsMsgHeader_Set(msg.get(), "KV-Operation", "DEL");
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = std::max<std::int64_t>(impl_->options.timeout.count(), 1);
  // Delete only our own claim: a claim taken over meanwhile stays.
  po.ExpectLastSubjectSeq = token;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_PublishMsg(nullptr, impl_->binding.js.get(), msg.get(), &po, &jerr);
  if (s == NATS_OK || jerr == JSStreamWrongLastSequenceErr) return {};
  return to_error(s, jerr, "release idempotency key '" + std::string(key) + "'", Surface::jetstream);
}

IdempotencyOptions exactly_once_idempotency(std::shared_ptr<IdempotencyStore> store) {
  IdempotencyOptions o;
  o.store = std::move(store);
  o.key = [](const Invocation& inv) -> std::string {
    if (inv.info.qos != QoS::exactly_once || !inv.context.message_id) return {};
    return inv.context.message_id.text().str();
  };
  return o;
}

}  // namespace catga::nats
