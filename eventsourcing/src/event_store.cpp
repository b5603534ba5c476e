#include "catga/eventsourcing/event_store.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "catga/nats/ack_reply.hpp"
#include "catga/nats/native/error.hpp"
#include "catga/nats/native/message.hpp"
#include "catga/nats/native/request.hpp"
#include "catga/nats/streams.hpp"
#include "catga/wire.hpp"
#include "commit_codec.hpp"
#include "event_store_impl.hpp"
#include "log.hpp"

namespace catga::eventsourcing {

using nats::native::Surface;
using nats::native::to_error;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::string_view kMsgIdHeader = "Nats-Msg-Id";
constexpr std::string_view kStatusHeader = "Status";

std::int64_t remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return std::max<std::int64_t>(left, 1);
}

// Runs one request to the server, `once(wait_ms)`, and sends it again while
// it fails retryably (timeout, leader change), until `deadline`. One try
// waits at most `attempt`: a request that reached a server which then
// crashed is never answered, and would otherwise use up the whole deadline.
template <class Once>
auto with_retries(Clock::time_point deadline, std::chrono::milliseconds attempt, Once once)
    -> decltype(once(std::int64_t{})) {
  auto pause = std::chrono::milliseconds(20);
  for (;;) {
    auto r = once(std::min(remaining_ms(deadline), std::max<std::int64_t>(attempt.count(), 1)));
    if (r || !r.error().retryable || Clock::now() + pause >= deadline) return r;
    detail::log().debug("catga.es retried: {}", r.error().message);
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
}

// Where answers nobody reads go: no one subscribes to it.
constexpr const char* kDiscardInbox = "_INBOX.catga.discard";

// Standard base64 (the stream API's message data); nullopt when invalid.
std::optional<std::string> base64_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(in.size() / 4 * 3);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    const int v = value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

// Fills actor/correlation/causation from the running handler's context.
void fill_metadata(AppendOptions& o) {
  const Context* ctx = Context::current();
  if (ctx != nullptr) {
    if (o.correlation_id.empty() && ctx->correlation_id) o.correlation_id = ctx->correlation_id.text().str();
    if (o.causation_id.empty() && ctx->message_id) o.causation_id = ctx->message_id.text().str();
  }
  if (o.commit_id.empty()) o.commit_id = MessageId::generate().text().str();
}

// Whether the stream has more than one replica, from its config on the
// server. Unknown (cannot be read now): true, the careful answer.
bool replicated(jsCtx* js, const std::string& stream) {
  nats::native::StreamInfoHandle info;
  if (js_GetStreamInfo(info.out(), js, stream.c_str(), nullptr, nullptr) != NATS_OK) return true;
  return info.get()->Config == nullptr || info.get()->Config->Replicas > 1;
}

}  // namespace

std::string EventStoreOptions::stream_name() const {
  if (!stream.name.empty()) return stream.name;
  std::string n;
  for (char c : prefix) n.push_back(std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : '_');
  return n + "_ES";
}
std::string EventStoreOptions::subject(const StreamId& s) const { return prefix + ".es." + s.type + "." + s.id; }
std::string EventStoreOptions::all_subjects() const { return prefix + ".es.>"; }

EventStore::EventStore(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
EventStore::~EventStore() = default;
const EventStoreOptions& EventStore::options() const noexcept { return impl_->options; }
const std::shared_ptr<nats::Connection>& EventStore::connection() const noexcept { return impl_->connection; }

Result<std::shared_ptr<EventStore>> EventStore::create(std::shared_ptr<nats::Connection> connection,
                                                       EventStoreOptions options) {
  if (!connection) return make_error(errc::validation, "EventStore: no connection");
  if (auto v = wire::check_subject(options.prefix, "EventStore: prefix"); !v) return std::move(v).error();
  auto impl = std::make_unique<Impl>();
  impl->connection = std::move(connection);
  impl->options = std::move(options);
  impl->stream_name = impl->options.stream_name();
  // The name goes into $JS.API.….<stream> subjects.
  if (auto v = wire::check_subject(impl->stream_name, "EventStore: stream name", wire::SubjectPart::token); !v) {
    return std::move(v).error();
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = std::max<std::int64_t>(impl->options.timeout.count(), 1);
  if (natsStatus s = natsConnection_JetStream(impl->js.out(), impl->nc(), &jo); s != NATS_OK) {
    return to_error(s, "JetStream context for the event store");
  }
  if (auto c = impl->connection->wait_connected(impl->options.timeout); !c) return std::move(c).error();
  if (impl->options.provision) {
    if (auto s = nats::ensure_stream(*impl->connection, impl->stream_name, {impl->options.all_subjects()},
                                     impl->options.stream, impl->options.timeout);
        !s) {
      return std::move(s).error();
    }
  }
  impl->replicated = replicated(impl->js.get(), impl->stream_name);
  return std::shared_ptr<EventStore>(new EventStore(std::move(impl)));
}

struct EventStore::ReadState {
  // The read rule: a commit is kept only if it starts after `kept_version`.
  bool base_known = true;
  std::uint64_t kept_version = 0;
  std::uint64_t end_sequence = 0;  // last message read, ignored ones included
  std::uint64_t end_claims = 0;    // the last version that message claims (0: none read)
  bool cut = false;                // time travel stopped the read
  std::vector<Commit> commits;
  std::uint64_t ignored = 0;
  std::vector<Commit>* ignored_out = nullptr;
};

std::uint64_t EventStore::ignored_commits() const noexcept { return impl_->ignored.load(); }

Result<std::optional<Commit>> EventStore::last_commit(const StreamId& stream) {
  auto r = read_stream(stream);
  if (!r) return std::move(r).error();
  if (r->commits.empty()) return std::optional<Commit>();
  return std::optional<Commit>(std::move(r->commits.back()));
}

Result<Position> EventStore::last(const StreamId& stream) {
  auto r = read_stream(stream);
  if (!r) return std::move(r).error();
  return r->end;
}

// The sequence of the subject's last message, from the stream leader
// ($JS.API.STREAM.MSG.GET; never a direct get, replicas may lag). 0: none.
Result<std::uint64_t> EventStore::last_sequence(const StreamId& stream, Clock::time_point deadline) {
  const std::string subject = impl_->options.subject(stream);
  return with_retries(deadline, impl_->options.attempt_timeout, [&](std::int64_t wait) -> Result<std::uint64_t> {
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = wait;
    nats::native::MsgHandle msg;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus s =
        js_GetLastMsg(msg.out(), impl_->jet(), impl_->stream_name.c_str(), subject.c_str(), &jo, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) return std::uint64_t{0};
    if (s != NATS_OK) return to_error(s, jerr, "read last commit of '" + stream.key() + "'", Surface::jetstream);
    return natsMsg_GetSequence(msg.get());
  });
}

// One message from the stream leader: the one at `sequence`, or with
// `next_on_subject` the first message of the stream's subject at or after
// it. nullopt: none (or, by sequence, not a commit of this stream).
Result<std::optional<Commit>> EventStore::leader_get(const StreamId& stream, std::uint64_t sequence,
                                                     bool next_on_subject, Clock::time_point deadline) {
  const std::string subject = impl_->options.subject(stream);
  const std::string api = "$JS.API.STREAM.MSG.GET." + impl_->stream_name;
  nlohmann::json req{{"seq", sequence}};
  if (next_on_subject) req["next_by_subj"] = subject;
  const std::string body = req.dump();
  const std::string what = "read '" + stream.key() + "' at sequence " + std::to_string(sequence);
  return with_retries(deadline, impl_->options.attempt_timeout, [&](std::int64_t wait) -> Result<std::optional<Commit>> {
    nats::native::MsgHandle reply;
    const natsStatus s = natsConnection_Request(reply.out(), impl_->nc(), api.c_str(), body.data(),
                                                static_cast<int>(body.size()), wait);
    if (s != NATS_OK) return to_error(s, what, Surface::jetstream);
    try {
      const auto j = nlohmann::json::parse(nats::native::body_of(reply.get()));
      if (auto e = j.find("error"); e != j.end()) {
        if (e->value("code", 0) == 404) return std::optional<Commit>();
        return make_error(errc::unavailable, what + ": " + e->value("description", std::string("error")),
                          e->value("code", 0) >= 500);
      }
      const auto& m = j.at("message");
      if (m.at("subject").get<std::string>() != subject) return std::optional<Commit>();
      auto data = base64_decode(m.value("data", std::string{}));
      if (!data) return make_error(errc::malformed, what + ": data is not base64");
      auto c = detail::decode_commit(*data, m.at("seq").get<std::uint64_t>(), impl_->upcasters());
      if (!c) return std::move(c).error();
      return std::optional<Commit>(std::move(*c));
    } catch (const std::exception& e) {
      return make_error(errc::malformed, what + ": " + e.what());
    }
  });
}

// After the server stored our commit (versions first_version.., at
// `sequence`) expecting `expected`: is it the commit holding those versions
// by the read rule? Common case: the message at the expected sequence ends
// at the expected version (known when this store read or appended it last,
// else a leader get) and the next message of the subject is ours (a leader
// get). Otherwise the stream is read (its end checked on the leader) and the
// rule decides. A lost race is a retryable `conflict`.
Status EventStore::confirm(const StreamId& stream, Position expected, std::uint64_t first_version,
                           std::uint64_t sequence, Clock::time_point deadline) {
  const std::string key = stream.key();
  bool base_ok = expected.sequence == 0 && expected.version == 0;
  if (!base_ok && expected.sequence > 0 && impl_->seen.holds(key, expected.sequence, expected.version)) {
    base_ok = expected.version + 1 == first_version;
  } else if (!base_ok && expected.sequence > 0) {
    auto at = leader_get(stream, expected.sequence, false, deadline);
    if (!at) return std::move(at).error();
    base_ok = *at && (*at)->last_version() == expected.version && (*at)->last_version() + 1 == first_version;
  }
  if (base_ok) {
    auto next = leader_get(stream, expected.sequence + 1, true, deadline);
    if (!next) return std::move(next).error();
    if (*next && (*next)->sequence == sequence) {
      impl_->seen.remember(key, sequence, (*next)->last_version());
      return {};
    }
  }
  std::vector<Commit> ignored;
  auto all = read_impl(stream, {}, deadline, &ignored);
  if (!all) return std::move(all).error();
  for (const auto& c : all->commits) {
    if (c.sequence == sequence) return {};
  }
  for (const auto& c : ignored) {
    if (c.sequence == sequence) {
      return make_error(errc::conflict,
                        "'" + stream.key() + "': version " + std::to_string(first_version) +
                            " is held by an earlier commit; ours (sequence " + std::to_string(sequence) +
                            ") was stored too (the server let a second conditional append through) and is ignored",
                        true);
    }
  }
  return make_error(errc::unavailable,
                    "'" + stream.key() + "': commit at sequence " + std::to_string(sequence) + " not found on read",
                    true);
}

Result<AppendResult> EventStore::append(const StreamId& stream, Position expected, std::vector<EventData> events,
                                        AppendOptions options) {
  if (auto v = stream.validate(); !v) return std::move(v).error();
  if (events.empty()) return make_error(errc::validation, "append to '" + stream.key() + "' without events");
  const auto deadline = Clock::now() + impl_->options.timeout;
  const std::string subject = impl_->options.subject(stream);

  if (expected.version > 0 && expected.sequence == 0) {
    // Only the version is known: find where the stream ends. The server
    // still checks that sequence, so this read cannot let a concurrent
    // append slip through.
    auto at = read_impl(stream, {}, deadline, nullptr);
    if (!at) return std::move(at).error();
    if (at->end.version != expected.version) {
      return make_error(errc::conflict,
                        "'" + stream.key() + "' is at version " + std::to_string(at->end.version) + ", expected " +
                            std::to_string(expected.version),
                        true);
    }
    expected.sequence = at->end.sequence;
  }

  fill_metadata(options);
  Commit commit;
  commit.stream = stream;
  commit.commit_id = options.commit_id;
  commit.events.reserve(events.size());
  const auto now = std::chrono::system_clock::now();
  std::uint64_t version = expected.version;
  for (auto& e : events) {
    // The relay publishes it on <prefix>.evt.<type>.
    if (auto v = wire::check_subject(e.type, "event type"); !v) {
      return make_error(errc::validation, v.error().message + " (appended to '" + stream.key() + "')");
    }
    RecordedEvent r;
    r.id = MessageId::generate().text().str();
    r.type = std::move(e.type);
    r.schema = e.schema > 0 ? e.schema : (impl_->upcasters() ? impl_->upcasters()->current(r.type) : 1);
    r.version = ++version;
    r.time = now;
    r.actor = options.actor;
    r.correlation_id = options.correlation_id;
    r.causation_id = options.causation_id;
    r.data = std::move(e.data);
    commit.events.push_back(std::move(r));
  }
  const std::string body = detail::encode_commit(commit);
  const std::string msg_id = detail::commit_message_id(stream, version, commit.commit_id);

  // Every try sends this same message (same Nats-Msg-Id, same reply
  // subject): the ack of any try says the commit is stored.
  nats::native::Request request(*impl_->connection);
  nats::native::MsgHandle msg;
  if (natsStatus s = natsMsg_Create(msg.out(), subject.c_str(), request.next_reply(), body.data(),
                                    static_cast<int>(body.size()));
      s != NATS_OK) {
    return to_error(s, "create commit message");
  }
  if (auto h = nats::native::set_header(msg.get(), "Content-Type", "application/json"); !h) return std::move(h).error();
  if (auto h = nats::native::set_header(msg.get(), detail::kVersionHeader, std::to_string(version)); !h) {
    return std::move(h).error();
  }
  if (auto h = nats::native::set_header(msg.get(), detail::kExpectedHeader, std::to_string(expected.sequence)); !h) {
    return std::move(h).error();
  }

  // Version 0 expects no message yet (sequence 0).
  const nats::native::PublishChecks checks{.msg_id = msg_id.c_str(),
                                           .last_subject_sequence = expected.version == 0 ? 0 : expected.sequence};

  const std::uint64_t first_version = expected.version + 1;
  auto pause = std::chrono::milliseconds(20);
  for (;;) {
    // One try waits at most attempt_timeout: a publish that reached a leader
    // which then crashed is never answered.
    const auto answer = request.js_publish(
        msg.get(), checks,
        std::min<std::int64_t>(remaining_ms(deadline), std::max<std::int64_t>(impl_->options.attempt_timeout.count(), 1)));
    const natsStatus s = answer.status;
    const jsErrCode jerr = answer.js_error;
    if (s == NATS_OK) {
      // A duplicate ack means this exact Nats-Msg-Id, commit id included,
      // is stored: an earlier try of this append. Either way the server may
      // have let a concurrent commit at the same position through too.
      const std::uint64_t seq = answer.ack.sequence;
      const bool duplicate = answer.ack.duplicate;
      if (impl_->replicated || impl_->options.confirm_appends == EventStoreOptions::Confirm::always) {
        if (auto c = confirm(stream, expected, first_version, seq, deadline); !c) return std::move(c).error();
      }
      return AppendResult{Position{version, seq}, first_version, duplicate};
    }
    Error err = to_error(s, jerr, "append to '" + stream.key() + "'", Surface::jetstream, answer.refusal);
    if (jerr == JSStreamWrongLastSequenceErr) {
      // Either someone else appended, or this is our own earlier try whose
      // ack was lost (an R3 cluster checks the sequence before dedup), maybe
      // with other commits after it: look for our commit id among the
      // commits after the expected position.
      std::vector<Commit> ignored;
      auto after = read_impl(stream, {.after_sequence = expected.sequence, .after_version = expected.version}, deadline,
                             &ignored);
      if (!after) return std::move(after).error();
      auto ours = [&](const Commit& c) { return c.commit_id == commit.commit_id && c.last_version() == version; };
      for (const auto& c : after->commits) {
        if (ours(c)) return AppendResult{Position{version, c.sequence}, first_version, true};
      }
      const bool lost = std::any_of(ignored.begin(), ignored.end(), ours);
      return make_error(errc::conflict,
                        "'" + stream.key() + "' moved past version " + std::to_string(expected.version) +
                            (lost ? " (our earlier try was stored but another commit holds its version)" : ""),
                        true);
    }
    if (!err.retryable || Clock::now() + pause >= deadline) return err;
    // Lost ack, leader change, reconnect: send the same message again; the
    // server deduplicates it by Nats-Msg-Id or the branch above recognises it.
    detail::log().debug("catga.es append to '{}' retried: {}", stream.key(), err.message);
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
}

Result<std::vector<Commit>> EventStore::read(const StreamId& stream, ReadOptions options) {
  auto r = read_stream(stream, std::move(options));
  if (!r) return std::move(r).error();
  return std::move(r->commits);
}

Result<StreamRead> EventStore::read_stream(const StreamId& stream, ReadOptions options) {
  if (auto v = stream.validate(); !v) return std::move(v).error();
  return read_impl(stream, options, Clock::now() + impl_->options.timeout, nullptr);
}

Result<StreamRead> EventStore::read_impl(const StreamId& stream, const ReadOptions& options,
                                         Clock::time_point deadline, std::vector<Commit>* ignored) {
  ReadState st;
  st.ignored_out = ignored;
  st.end_sequence = options.after_sequence;
  if (options.after_sequence > 0) {
    st.base_known = options.after_version.has_value();
    st.kept_version = options.after_version.value_or(0);
  }
  auto done = [&]() -> Result<StreamRead> {
    if (st.end_claims > 0) impl_->seen.remember(stream.key(), st.end_sequence, st.end_claims);
    StreamRead r;
    r.end = Position{st.kept_version, st.end_sequence};
    r.ignored = st.ignored;
    r.commits = std::move(st.commits);
    return r;
  };
  if (auto s = read_once(stream, options, deadline, st); !s) return std::move(s).error();
  if (st.cut || !impl_->replicated) return done();
  // Replicated stream: a consumer created right after a leader change may
  // count from a replica that has not caught up. The leader's last message
  // of the subject says where the stream really ends; read on until there.
  for (int round = 0; round < 20 && Clock::now() < deadline; ++round) {
    auto last = last_sequence(stream, deadline);
    if (!last) return std::move(last).error();
    const std::uint64_t have = st.end_sequence;
    if (*last <= have) return done();
    ReadOptions more = options;
    more.after_sequence = have;
    if (auto s = read_once(stream, more, deadline, st); !s) return std::move(s).error();
    if (st.cut) return done();
    if (st.end_sequence == have) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return make_error(errc::unavailable, "read '" + stream.key() + "': the stream's replicas did not catch up", true);
}

Status EventStore::read_once(const StreamId& stream, const ReadOptions& options, Clock::time_point deadline,
                             ReadState& st) {
  st.cut = false;
  const std::string subject = impl_->options.subject(stream);

  // An ephemeral pull consumer: its creation answers how many commits there
  // are (NumPending), then one pull request streams them all.
  jsConsumerConfig cfg;
  jsConsumerConfig_Init(&cfg);
  cfg.FilterSubject = subject.c_str();
  cfg.AckPolicy = js_AckNone;
  cfg.DeliverPolicy = options.after_sequence > 0 ? js_DeliverByStartSequence : js_DeliverAll;
  cfg.OptStartSeq = options.after_sequence > 0 ? options.after_sequence + 1 : 0;
  cfg.ReplayPolicy = js_ReplayInstant;
  cfg.MemoryStorage = true;
  cfg.Replicas = 1;
  cfg.InactiveThreshold = std::chrono::nanoseconds(std::chrono::seconds(30)).count();  // if our delete is lost
  // A try whose answer was lost may leave a consumer behind; the server
  // removes it after InactiveThreshold.
  nats::native::ConsumerInfoHandle info;
  auto created = with_retries(deadline, impl_->options.attempt_timeout, [&](std::int64_t wait) -> Status {
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = wait;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus s = js_AddConsumer(info.out(), impl_->jet(), impl_->stream_name.c_str(), &cfg, &jo, &jerr);
    if (s != NATS_OK) return to_error(s, jerr, "read '" + stream.key() + "' (create consumer)", Surface::jetstream);
    return {};
  });
  if (!created) return std::move(created).error();
  natsStatus s = NATS_OK;
  const std::string name = info.get()->Name;
  const std::uint64_t pending = info.get()->NumPending;
  // Deleted without waiting for the answer, which says nothing the read
  // needs (a delete that is lost leaves the consumer to InactiveThreshold).
  struct DeleteConsumer {
    EventStore::Impl& impl;
    const std::string& name;
    ~DeleteConsumer() {
      const std::string api = "$JS.API.CONSUMER.DELETE." + impl.stream_name + "." + name;
      natsConnection_PublishRequest(impl.nc(), api.c_str(), kDiscardInbox, nullptr, 0);
    }
  } cleanup{*impl_, name};
  if (pending == 0) return {};

  nats::native::InboxHandle inbox;
  if (s = natsInbox_Create(inbox.out()); s != NATS_OK) return to_error(s, "create inbox");
  nats::native::SubscriptionHandle sub;
  if (s = natsConnection_SubscribeSync(sub.out(), impl_->nc(), inbox.get()); s != NATS_OK) {
    return to_error(s, "subscribe to read inbox");
  }
  // However the read ends (every commit read, cut by time travel, a commit
  // that does not decode, an error), the server may still be sending the
  // rest of the batch: the subscription goes through the connection's guard
  // (nats.c issue 637), unsubscribed before the consumer is deleted and
  // destroyed after a round trip off this path.
  struct RetireSubscription {
    const nats::Connection& connection;
    nats::native::SubscriptionHandle& sub;
    ~RetireSubscription() { nats::native::retire_later(connection, std::move(sub)); }
  } retire{*impl_->connection, sub};
  natsSubscription_SetPendingLimits(sub.get(), -1, -1);
  const std::string next = "$JS.API.CONSUMER.MSG.NEXT." + impl_->stream_name + "." + name;
  char req[96];
  const int len = std::snprintf(req, sizeof req, "{\"batch\":%llu,\"expires\":%lld}",
                                static_cast<unsigned long long>(pending),
                                static_cast<long long>(std::chrono::nanoseconds(impl_->options.timeout).count()));
  if (s = natsConnection_PublishRequest(impl_->nc(), next.c_str(), inbox.get(), req, len); s != NATS_OK) {
    return to_error(s, "read '" + stream.key() + "' (pull)");
  }
  st.commits.reserve(st.commits.size() + static_cast<std::size_t>(pending));
  for (std::uint64_t got = 0; got < pending;) {
    nats::native::MsgHandle m;
    s = natsSubscription_NextMsg(m.out(), sub.get(), remaining_ms(deadline));
    if (s == NATS_NO_RESPONDERS && got == 0 && Clock::now() + std::chrono::milliseconds(50) < deadline) {
      // On a cluster a consumer just created may not serve pulls yet (its
      // leader is being elected): ask again shortly, within the deadline.
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (s = natsConnection_PublishRequest(impl_->nc(), next.c_str(), inbox.get(), req, len); s != NATS_OK) {
        return to_error(s, "read '" + stream.key() + "' (pull)");
      }
      continue;
    }
    if (s != NATS_OK) return to_error(s, "read '" + stream.key() + "'", Surface::jetstream);
    const auto reply = nats::native::reply_of(m.get());
    if (reply.empty()) {
      const auto status = nats::native::get_header(m.get(), kStatusHeader);
      const int code = status ? nats::parse_status_code(*status) : 0;
      if (code == 100) continue;
      return make_error(errc::unavailable,
                        "read '" + stream.key() + "': pull ended with status " + std::to_string(code) + " after " +
                            std::to_string(got) + " of " + std::to_string(pending) + " commits",
                        true);
    }
    ++got;
    const auto meta = nats::parse_ack_reply(reply);
    auto c = detail::decode_commit(nats::native::body_of(m.get()), meta ? meta->stream_seq : 0, impl_->upcasters());
    if (!c) return std::move(c).error();
    if (c->sequence >= st.end_sequence) {
      st.end_sequence = c->sequence;
      st.end_claims = c->last_version();  // before time travel cuts it
    }
    // The read rule: a commit claiming a version already held is ignored.
    if (st.base_known && c->first_version() <= st.kept_version) {
      ++st.ignored;
      impl_->ignored.fetch_add(1, std::memory_order_relaxed);
      detail::log().warn(
          "catga.es '{}': commit {} at sequence {} claims version {} already held; ignored (a second conditional "
          "append was let through)",
          stream.key(), c->commit_id, c->sequence, c->first_version());
      if (st.ignored_out != nullptr) st.ignored_out->push_back(std::move(*c));
      continue;
    }
    st.base_known = true;
    // Time travel: keep the events up to the bound, then stop.
    auto& ev = c->events;
    for (std::size_t i = 0; i < ev.size(); ++i) {
      if ((options.to_version && ev[i].version > *options.to_version) || (options.to_time && ev[i].time > *options.to_time)) {
        ev.resize(i);
        st.cut = true;
        break;
      }
    }
    if (!ev.empty()) {
      st.kept_version = ev.back().version;
      st.commits.push_back(std::move(*c));
    }
    if (st.cut) break;
  }
  return {};
}

}  // namespace catga::eventsourcing
