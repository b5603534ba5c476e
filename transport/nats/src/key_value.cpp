#include "catga/nats/key_value.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

#include "catga/message_id.hpp"
#include "catga/nats/native/request.hpp"

#include "ack_reply.hpp"
#include "connection_impl.hpp"
#include "error.hpp"
#include "handle.hpp"
#include "kv_leader.hpp"
#include "kv_open.hpp"
#include "log.hpp"
#include "message.hpp"

namespace catga::nats {

using detail::Surface;
using detail::to_error;

namespace detail {

namespace {

// Whether the server holding `stream` serializes conditional writes on
// replicated streams (nats-server 2.10 or later; issue 4320 was fixed there).
// nats.c 3.4.1 does not tell the server's version, so it is told from the
// stream's info as the stream leader answers it: 2.10 added `compression` to
// every stream config it reports (a quote inside a JSON string is escaped,
// so a description cannot fake the key).
Result<bool> serializes_conditional_writes(Connection& connection, const std::string& stream,
                                           std::chrono::milliseconds timeout) {
  const std::string subject = "$JS.API.STREAM.INFO." + stream;
  MsgHandle reply;
  const natsStatus s = natsConnection_Request(reply.out(), detail::impl_of(connection).conn(), subject.c_str(), nullptr, 0,
                                              std::max<std::int64_t>(timeout.count(), 1));
  if (s != NATS_OK) return to_error(s, "info of stream '" + stream + "'", Surface::jetstream);
  const std::string_view info(natsMsg_GetData(reply.get()),
                              static_cast<std::size_t>(natsMsg_GetDataLength(reply.get())));
  if (info.find("\"config\"") == std::string_view::npos) {
    return make_error(errc::unavailable, "info of stream '" + stream + "': " + std::string(info.substr(0, 200)), true);
  }
  return info.find("\"compression\":") != std::string_view::npos;
}

}  // namespace

Result<KvBinding> open_kv(Connection& connection, const KvSpec& spec) {
  KvBinding b;
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = std::max<std::int64_t>(spec.timeout.count(), 1);
  if (natsStatus s = natsConnection_JetStream(b.js.out(), detail::impl_of(connection).conn(), &jo); s != NATS_OK) {
    return to_error(s, "JetStream context for KV");
  }
  if (auto c = connection.wait_connected(spec.timeout); !c) return std::move(c).error();

  // A peer creating the bucket at the same moment, or a replicated stream
  // that has no leader yet (its info is not answered), is not a failure: try
  // again until spec.timeout.
  const auto deadline = std::chrono::steady_clock::now() + spec.timeout;
  auto pause = std::chrono::milliseconds(50);
  for (;;) {
    natsStatus s = js_KeyValue(b.kv.out(), b.js.get(), spec.bucket.c_str());
    if (s == NATS_OK) break;
    Error err;
    if (s == NATS_NOT_FOUND) {
      kvConfig cfg;
      kvConfig_Init(&cfg);
      cfg.Bucket = spec.bucket.c_str();
      if (!spec.description.empty()) cfg.Description = spec.description.c_str();
      cfg.History = static_cast<uint8_t>(std::clamp(spec.history, 1, 64));
      cfg.TTL = spec.ttl.count();
      cfg.StorageType = spec.storage == StorageType::memory ? js_MemoryStorage : js_FileStorage;
      cfg.Replicas = std::max(spec.replicas, 1);
      s = js_CreateKeyValue(b.kv.out(), b.js.get(), &cfg);
      if (s == NATS_OK) {
        log().info("catga.nats created KV bucket '{}'", spec.bucket);
        break;
      }
      err = to_error(s, "create KV bucket '" + spec.bucket + "'", Surface::jetstream);
    } else {
      err = to_error(s, "open KV bucket '" + spec.bucket + "'", Surface::jetstream);
    }
    if (err.code == errc::validation || std::chrono::steady_clock::now() + pause >= deadline) return err;
    log().debug("catga.nats {} (trying again)", err.message);
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
  kvStatus* status = nullptr;
  int replicas = std::max(spec.replicas, 1);
  if (kvStore_Status(&status, b.kv.get()) == NATS_OK) {
    if (kvStatus_TTL(status) != spec.ttl.count()) {
      log().warn("catga.nats KV bucket '{}' keeps its ttl of {} ns (configured {} ns)", spec.bucket,
                 kvStatus_TTL(status), spec.ttl.count());
    }
    replicas = static_cast<int>(kvStatus_Replicas(status));  // what the bucket has, asked for or not
    kvStatus_Destroy(status);
  }
  if (replicas > 1 && !spec.allow_replicated_before_nats_2_10) {
    auto serialized = serializes_conditional_writes(connection, "KV_" + spec.bucket, spec.timeout);
    if (!serialized) return std::move(serialized).error();
    if (!*serialized) {
      return make_error(errc::validation,
                        "KV bucket '" + spec.bucket + "' has " + std::to_string(replicas) +
                            " replicas, but the server is older than nats-server 2.10, which can store two "
                            "conditional writes expecting the same revision while a stream leader changes "
                            "(nats-server issue 4320): run nats-server 2.10 or later, use replicas = 1, or set "
                            "allow_replicated_before_nats_2_10 to accept that risk");
    }
  }
  return b;
}

}  // namespace detail

namespace {

using Clock = std::chrono::steady_clock;
using detail::MsgHandle;

// Who wrote a message: a fresh id per create/update call, so a write whose
// answer was lost can be told apart from another writer's.
constexpr const char* kWriterHeader = "Catga-Kv-Writer";
constexpr const char* kMsgIdHeader = "Nats-Msg-Id";
constexpr const char* kOperationHeader = "KV-Operation";  // DEL / PURGE markers

Status check_key(std::string_view key) {
  const bool ok = !key.empty() && key.front() != '.' && key.back() != '.' &&
                  std::all_of(key.begin(), key.end(), [](char c) {
                    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                           c == '_' || c == '=' || c == '/' || c == '.';
                  });
  if (!ok) return make_error(errc::validation, "invalid KV key '" + std::string(key) + "' (use [-/_=.a-zA-Z0-9])");
  return {};
}

std::int64_t ms_until(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return std::max<std::int64_t>(left, 1);
}

std::string header_of(natsMsg* m, const char* name) {
  const char* v = nullptr;
  if (natsMsgHeader_Get(m, name, &v) == NATS_OK && v != nullptr) return v;
  return {};
}

using Stored = detail::KvStored;

Stored stored_of(natsMsg* m) {
  Stored out;
  out.revision = natsMsg_GetSequence(m);
  const std::string op = header_of(m, kOperationHeader);
  out.deleted = op == "DEL" || op == "PURGE";
  if (const char* d = natsMsg_GetData(m); d != nullptr) {
    out.value.assign(d, static_cast<std::size_t>(natsMsg_GetDataLength(m)));
  }
  out.writer = header_of(m, kWriterHeader);
  out.msg_id = header_of(m, kMsgIdHeader);
  out.time_ns = natsMsg_GetTime(m);
  return out;
}

}  // namespace

struct KvBucket::Impl {
  std::shared_ptr<Connection> connection;
  KvBucketOptions options;
  detail::KvBinding binding;  // own context: its Wait is options.timeout
  detail::KvLeader leader;    // reads and conditional writes on binding.js

  kvStore* kv() const noexcept { return binding.kv.get(); }
};

detail::KvLeader::KvLeader(const Connection& connection, jsCtx* js, const std::string& bucket,
                           std::chrono::milliseconds timeout, std::chrono::nanoseconds ttl)
    : connection_(&connection), js_(js), stream_("KV_" + bucket), subject_prefix_("$KV." + bucket + "."), timeout_(timeout), ttl_(ttl) {}

// One request waits at most this long: an answer lost to a frozen or
// crashed leader leaves the rest of the deadline for finding out.
std::int64_t detail::KvLeader::try_ms(Clock::time_point deadline) const {
  const std::int64_t per_try = std::max<std::int64_t>(timeout_.count() / 4, 100);
  return std::min(ms_until(deadline), per_try);
}

// Reads go to the stream leader ($JS.API.STREAM.MSG.GET), never to a replica
// through a direct get: a lagging replica may not hold a write that was
// already acknowledged, and these reads decide writes.
Result<std::optional<Stored>> detail::KvLeader::read_last(const std::string& key, std::int64_t wait_ms) const {
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = wait_ms;
  MsgHandle m;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const std::string subject = subject_of(key);
  const natsStatus s = js_GetLastMsg(m.out(), js_, stream_.c_str(), subject.c_str(), &jo, &jerr);
  if (s == NATS_NOT_FOUND) return std::optional<Stored>();
  if (s != NATS_OK) return to_error(s, jerr, "KV get '" + key + "'", Surface::jetstream);
  return std::optional<Stored>(stored_of(m.get()));
}

Result<std::optional<Stored>> detail::KvLeader::read_at(const std::string& key, std::uint64_t revision,
                                                       std::int64_t wait_ms) const {
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = wait_ms;
  MsgHandle m;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetMsg(m.out(), js_, stream_.c_str(), revision, &jo, &jerr);
  if (s == NATS_NOT_FOUND) return std::optional<Stored>();
  if (s != NATS_OK) {
    return to_error(s, jerr, "KV get '" + key + "' at revision " + std::to_string(revision), Surface::jetstream);
  }
  const char* subject = natsMsg_GetSubject(m.get());
  if (subject == nullptr || subject_of(key) != subject) return std::optional<Stored>();
  return std::optional<Stored>(stored_of(m.get()));
}

// read_last, tried again on retryable failures (a leader election answers
// "no responders" for a second or two) until `deadline`.
Result<std::optional<Stored>> detail::KvLeader::read_last_until(const std::string& key,
                                                               Clock::time_point deadline) const {
  auto pause = std::chrono::milliseconds(20);
  for (;;) {
    auto r = read_last(key, try_ms(deadline));
    if (r || !r.error().retryable || Clock::now() + pause >= deadline) return r;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
}

// Stores `value` if the key's last message is at `expected` (0: the key has
// no message at all). What happened is decided from the server's answers,
// never from a read of a replica:
//   - "wrong last sequence" (JetStream error 10071) is a retryable conflict;
//   - no answer (timeout, leader change, reconnect) sends the same message
//     again, which the server stores once at most, and recognises an earlier
//     try of this call by its writer id at the revision the server names;
//   - when that cannot be told, a retryable `timeout` that says the write may
//     be stored: never a `conflict` for a write that happened.
Result<std::uint64_t> detail::KvLeader::write(const std::string& key, std::string_view value,
                                              std::uint64_t expected) const {
  const auto deadline = Clock::now() + timeout_;
  const std::string what = std::string(expected > 0 ? "KV update '" : "KV create '") + key + "'";
  const std::string writer = MessageId::generate().text().str();
  // Updates expecting the same revision share one Nats-Msg-Id (the slot), so
  // the server stores one of them at most: nats-server before 2.9.21 checks
  // the expected sequence of a replicated stream only against the leader's
  // store before proposing, so two updates in flight both pass (upstream
  // issue 4320), but deduplicates as it stores. A create's id is its own
  // ("no message yet" is always checked as the message is stored, and a key
  // created and erased a moment ago still has its id in the duplicate window).
  const std::string slot = "catga-kv:" + key + "@" + std::to_string(expected);
  const std::string own = slot + ":" + writer;
  bool own_id = expected == 0;
  auto conflict = [&] {
    return make_error(errc::conflict,
                      expected > 0 ? "KV key '" + key + "' is not at revision " + std::to_string(expected)
                                   : "KV key '" + key + "' exists",
                      true);
  };
  // What the leader's message for the key says about our write: stored (it
  // is ours), not stored (`conflict`), or nullopt: cannot tell.
  auto judge = [&](const Stored& e) -> std::optional<Result<std::uint64_t>> {
    if (e.writer == writer) return Result<std::uint64_t>(e.revision);
    // Another write that expected the same revision won it: the slot is
    // stored once at most, and where own ids are used the server checks the
    // expected sequence as it stores. With a ttl, a create of ours may have
    // been stored and expired before another create.
    const bool same_slot = e.msg_id == slot || e.msg_id.rfind(slot + ":", 0) == 0;
    if (same_slot && (expected > 0 || ttl_.count() == 0)) return Result<std::uint64_t>(conflict());
    // An erased key: create() goes on over the marker. Had ours been stored
    // and erased in the meantime, the erase comes first in the key's history
    // and our create after it, which is a history that could have happened.
    if (expected == 0 && e.deleted && ttl_.count() == 0) return Result<std::uint64_t>(conflict());
    return std::nullopt;
  };

  const std::string subject = subject_of(key);
  native::Request request(*connection_);

  bool maybe_stored = false;  // a try went unanswered
  auto pause = std::chrono::milliseconds(20);
  Error unanswered;
  for (;;) {
    // Each try is its own message: its reply subject is.
    MsgHandle msg;
    if (natsStatus s = natsMsg_Create(msg.out(), subject.c_str(), request.next_reply(), value.data(),
                                      static_cast<int>(value.size()));
        s != NATS_OK) {
      return to_error(s, what);
    }
    if (auto h = detail::set_header(msg.get(), kWriterHeader, writer); !h) return std::move(h).error();
    const native::PublishChecks checks{.msg_id = own_id ? own.c_str() : slot.c_str(),
                                       .last_subject_sequence = expected};
    const auto answer = request.js_publish(msg.get(), checks, try_ms(deadline));
    const natsStatus s = answer.status;
    const jsErrCode jerr = answer.js_error;
    if (s == NATS_OK && !answer.ack.duplicate) return answer.ack.sequence;
    if (s == NATS_OK) {
      // Deduplicated: a message with this Nats-Msg-Id is stored, or (sequence
      // 0) being stored.
      const std::uint64_t at = answer.ack.sequence;
      if (own_id) {
        if (at > 0) return at;  // an earlier try of this call
      } else if (at == 0) {
        // Another writer's update of the slot is in flight on a server that
        // deduplicates before proposing (2.10.14 and later); such servers
        // check the expected sequence as they store, so our own id is safe
        // there, and not blocked by a proposal of the slot that failed.
        own_id = true;
        continue;
      } else if (!maybe_stored) {
        return conflict();  // the slot is taken, and not by us
      } else {
        auto e = read_at(key, at, try_ms(deadline));
        if (e && *e) {
          if (auto verdict = judge(**e)) return std::move(*verdict);
        }
        if (e && !*e) break;  // overwritten since: whose it was is gone
        if (!e) unanswered = std::move(e).error();
      }
    } else if (jerr == JSStreamWrongLastSequenceErr) {
      // A refusal of this very message. After a try without answer it may be
      // the refusal of a repeat of a stored try (the sequence is checked
      // before deduplicating on replicated streams): the leader's last
      // message says.
      if (!maybe_stored) return conflict();
      auto last = read_last(key, try_ms(deadline));
      if (!last) {
        unanswered = std::move(last).error();
      } else if (!*last) {
        // Nothing there: ours is not stored (unless it expired since).
        if (expected > 0 && ttl_.count() == 0) return conflict();
      } else if (auto verdict = judge(**last)) {
        return std::move(*verdict);
      } else if ((*last)->revision != expected) {
        break;  // someone else wrote after ours, or instead of it
      }
    } else {
      Error err = to_error(s, jerr, what, Surface::jetstream, answer.refusal);
      // A server answer without a code (503 "no quorum" while a leader is
      // elected) is not a refusal either.
      const bool uncertain = err.retryable || (s == NATS_ERR && jerr == 0);
      if (!uncertain) return err;
      unanswered = std::move(err);
      maybe_stored = true;
    }
    if (Clock::now() + pause >= deadline) break;
    detail::log().debug("catga.nats {} sent again: {}", what, unanswered.message);
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
  std::string message = what + ": no answer from the server, the write may or may not be stored";
  if (!unanswered.message.empty()) message += " (" + unanswered.message + ")";
  return make_error(errc::timeout, std::move(message), true);
}

// An erased key keeps a delete marker: "wrong last sequence" then means
// "create on top of the marker", as nats.c's kvStore_Create does (but with
// the marker read from the leader).
Result<std::uint64_t> detail::KvLeader::create(const std::string& key, std::string_view value) const {
  for (int round = 0;; ++round) {
    auto created = write(key, value, 0);
    if (created || created.error().code != errc::conflict || round == 2) return created;
    auto last = read_last_until(key, Clock::now() + timeout_);
    if (!last) return std::move(last).error();
    if (!*last) continue;  // purged in between
    if (!(*last)->deleted) return created;
    auto over = write(key, value, (*last)->revision);
    if (over || over.error().code != errc::conflict) return over;
  }
}

KvBucket::KvBucket(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
KvBucket::~KvBucket() = default;

const KvBucketOptions& KvBucket::options() const noexcept { return impl_->options; }

Result<std::shared_ptr<KvBucket>> KvBucket::open(std::shared_ptr<Connection> connection, KvBucketOptions options) {
  if (!connection) return make_error(errc::validation, "KvBucket: no connection");
  if (options.bucket.empty()) return make_error(errc::validation, "KvBucket: empty bucket name");
  auto impl = std::make_unique<Impl>();
  impl->connection = std::move(connection);
  impl->options = std::move(options);
  const auto& o = impl->options;
  auto binding = detail::open_kv(*impl->connection, {.bucket = o.bucket,
                                                     .description = {},
                                                     .history = o.history,
                                                     .ttl = o.ttl,
                                                     .storage = o.storage,
                                                     .replicas = o.replicas,
                                                     .timeout = o.timeout,
                                                     .allow_replicated_before_nats_2_10 =
                                                         o.allow_replicated_before_nats_2_10});
  if (!binding) return std::move(binding).error();
  impl->binding = std::move(*binding);
  impl->leader = detail::KvLeader(*impl->connection, impl->binding.js.get(), o.bucket, o.timeout, o.ttl);
  return std::shared_ptr<KvBucket>(new KvBucket(std::move(impl)));
}

Result<std::optional<KvEntry>> KvBucket::get(std::string_view key) {
  if (auto c = check_key(key); !c) return std::move(c).error();
  auto last = impl_->leader.read_last_until(std::string(key), Clock::now() + impl_->options.timeout);
  if (!last) return std::move(last).error();
  if (!*last || (*last)->deleted) return std::optional<KvEntry>();
  return std::optional<KvEntry>(KvEntry{std::move((*last)->value), (*last)->revision});
}

Result<std::uint64_t> KvBucket::create(std::string_view key, std::string_view value) {
  if (auto c = check_key(key); !c) return std::move(c).error();
  return impl_->leader.create(std::string(key), value);
}

Result<std::uint64_t> KvBucket::update(std::string_view key, std::string_view value, std::uint64_t expected_revision) {
  if (auto c = check_key(key); !c) return std::move(c).error();
  return impl_->leader.write(std::string(key), value, expected_revision);
}

Result<std::uint64_t> KvBucket::put(std::string_view key, std::string_view value) {
  if (auto c = check_key(key); !c) return std::move(c).error();
  const std::string k(key);
  std::uint64_t rev = 0;
  const natsStatus s = kvStore_Put(&rev, impl_->kv(), k.c_str(), value.data(), static_cast<int>(value.size()));
  if (s != NATS_OK) return to_error(s, "KV put '" + k + "'", Surface::jetstream);
  return rev;
}

Status KvBucket::erase(std::string_view key) {
  if (auto c = check_key(key); !c) return std::move(c).error();
  const std::string k(key);
  const natsStatus s = kvStore_Delete(impl_->kv(), k.c_str());
  if (s != NATS_OK && s != NATS_NOT_FOUND) return to_error(s, "KV delete '" + k + "'", Surface::jetstream);
  return {};
}

// Keys are listed by an ephemeral pull consumer of the bucket's stream that
// delivers each key's last message, headers only, to an inbox of our own.
// kvStore_Keys would destroy its watcher's subscription while the server may
// still be sending to it (nats.c before 3.10, issue 637: a use after free);
// this inbox goes through the connection's guard like every other one.
Result<std::vector<std::string>> KvBucket::keys(std::string_view prefix) {
  const auto deadline = Clock::now() + impl_->options.timeout;
  const std::string subjects = impl_->leader.subject_of("");
  const std::string what = "KV keys of '" + impl_->options.bucket + "'";
  // A prefix of whole tokens ("order.") narrows the consumer; any other is
  // applied to the keys read.
  const bool narrow = prefix.size() > 1 && prefix.back() == '.' && check_key(prefix.substr(0, prefix.size() - 1));
  const std::string filter = subjects + (narrow ? std::string(prefix) : std::string()) + ">";

  jsConsumerConfig cfg;
  jsConsumerConfig_Init(&cfg);
  cfg.FilterSubject = filter.c_str();
  cfg.AckPolicy = js_AckNone;
  cfg.DeliverPolicy = js_DeliverLastPerSubject;
  cfg.HeadersOnly = true;
  cfg.MemoryStorage = true;
  cfg.Replicas = 1;
  cfg.InactiveThreshold = std::chrono::nanoseconds(std::chrono::seconds(30)).count();  // if our delete is lost
  const std::string stream = "KV_" + impl_->options.bucket;
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = ms_until(deadline);
  detail::ConsumerInfoHandle info;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_AddConsumer(info.out(), impl_->binding.js.get(), stream.c_str(), &cfg, &jo, &jerr);
  if (s != NATS_OK) return to_error(s, jerr, what + " (create consumer)", Surface::jetstream);
  const std::string name = info.get()->Name;
  const std::uint64_t pending = info.get()->NumPending;
  struct DeleteConsumer {
    jsCtx* js;
    const std::string& stream;
    const std::string& name;
    ~DeleteConsumer() {
      jsOptions o;
      jsOptions_Init(&o);
      o.Wait = 2'000;
      js_DeleteConsumer(js, stream.c_str(), name.c_str(), &o, nullptr);
    }
  } cleanup{impl_->binding.js.get(), stream, name};

  std::vector<std::string> out;
  if (pending == 0) return out;
  auto& connection = detail::impl_of(*impl_->connection);
  detail::InboxHandle inbox;
  if (s = natsInbox_Create(inbox.out()); s != NATS_OK) return to_error(s, what + " (inbox)");
  detail::SubscriptionHandle sub;
  if (s = natsConnection_SubscribeSync(sub.out(), connection.conn(), inbox.get()); s != NATS_OK) {
    return to_error(s, what + " (subscribe)");
  }
  // Retired (the connection's guard) before the consumer is deleted.
  struct RetireSubscription {
    detail::ConnectionImpl& connection;
    detail::SubscriptionHandle& sub;
    ~RetireSubscription() { connection.retire(std::move(sub), std::chrono::milliseconds(1000)); }
  } retire{connection, sub};
  natsSubscription_SetPendingLimits(sub.get(), -1, -1);
  const std::string next = "$JS.API.CONSUMER.MSG.NEXT." + stream + "." + name;
  const auto ask = [&] {
    const std::string req = "{\"batch\":" + std::to_string(pending) +
                            ",\"expires\":" + std::to_string(ms_until(deadline) * 1'000'000) + "}";
    return natsConnection_PublishRequest(connection.conn(), next.c_str(), inbox.get(), req.data(),
                                         static_cast<int>(req.size()));
  };
  if (s = ask(); s != NATS_OK) return to_error(s, what + " (pull)");
  out.reserve(static_cast<std::size_t>(pending));
  for (std::uint64_t got = 0; got < pending;) {
    MsgHandle m;
    s = natsSubscription_NextMsg(m.out(), sub.get(), ms_until(deadline));
    if (s == NATS_NO_RESPONDERS && got == 0 && Clock::now() + std::chrono::milliseconds(50) < deadline) {
      // On a cluster a consumer just created may not serve pulls yet.
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (s = ask(); s != NATS_OK) return to_error(s, what + " (pull)");
      continue;
    }
    if (s != NATS_OK) return to_error(s, what, Surface::jetstream);
    if (detail::reply_of(m.get()).empty()) {  // a status: 100 is a heartbeat, anything else ends the pull
      const auto status = detail::get_header(m.get(), "Status");
      const int code = status ? detail::parse_status_code(*status) : 0;
      if (code == 100) continue;
      return make_error(errc::unavailable,
                        what + ": pull ended with status " + std::to_string(code) + " after " + std::to_string(got) +
                            " of " + std::to_string(pending) + " keys",
                        true);
    }
    ++got;
    const std::string op = header_of(m.get(), kOperationHeader);
    if (op == "DEL" || op == "PURGE") continue;
    const std::string_view key = detail::subject_of(m.get()).substr(subjects.size());
    if (key.substr(0, prefix.size()) == prefix) out.emplace_back(key);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace catga::nats
