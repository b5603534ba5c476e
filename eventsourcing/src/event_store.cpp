#include "catga/eventsourcing/event_store.hpp"

#include <algorithm>
#include <cctype>
#include <thread>

#include "ack_reply.hpp"
#include "commit_codec.hpp"
#include "error.hpp"
#include "event_store_impl.hpp"
#include "log.hpp"
#include "message.hpp"
#include "provisioning.hpp"

namespace catga::eventsourcing {

using nats::detail::Surface;
using nats::detail::to_error;
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
    nats::detail::log().debug("catga.es retried: {}", r.error().message);
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
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
  if (options.prefix.empty()) return make_error(errc::validation, "EventStore: empty prefix");
  auto impl = std::make_unique<Impl>();
  impl->connection = std::move(connection);
  impl->options = std::move(options);
  impl->stream_name = impl->options.stream_name();
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = std::max<std::int64_t>(impl->options.timeout.count(), 1);
  if (natsStatus s = natsConnection_JetStream(impl->js.out(), impl->nc(), &jo); s != NATS_OK) {
    return to_error(s, "JetStream context for the event store");
  }
  if (auto c = impl->connection->wait_connected(impl->options.timeout); !c) return std::move(c).error();
  if (impl->options.provision) {
    if (auto s = nats::detail::ensure_stream(impl->jet(), impl->stream_name, {impl->options.all_subjects()},
                                             impl->options.stream, impl->options.timeout);
        !s) {
      return std::move(s).error();
    }
  }
  return std::shared_ptr<EventStore>(new EventStore(std::move(impl)));
}

Result<std::optional<Commit>> EventStore::last_commit(const StreamId& stream) {
  if (auto v = stream.validate(); !v) return std::move(v).error();
  const std::string subject = impl_->options.subject(stream);
  const auto deadline = Clock::now() + impl_->options.timeout;
  return with_retries(deadline, impl_->options.attempt_timeout,
                      [&](std::int64_t wait) -> Result<std::optional<Commit>> {
                        jsOptions jo;
                        jsOptions_Init(&jo);
                        jo.Wait = wait;
                        nats::detail::MsgHandle msg;
                        jsErrCode jerr = static_cast<jsErrCode>(0);
                        const natsStatus s = js_GetLastMsg(msg.out(), impl_->jet(), impl_->stream_name.c_str(),
                                                           subject.c_str(), &jo, &jerr);
                        if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) return std::optional<Commit>();
                        if (s != NATS_OK) {
                          return to_error(s, jerr, "read last commit of '" + stream.key() + "'", Surface::jetstream);
                        }
                        auto c = detail::decode_commit(nats::detail::body_of(msg.get()),
                                                       natsMsg_GetSequence(msg.get()), impl_->upcasters());
                        if (!c) return std::move(c).error();
                        return std::optional<Commit>(std::move(*c));
                      });
}

Result<Position> EventStore::last(const StreamId& stream) {
  auto c = last_commit(stream);
  if (!c) return std::move(c).error();
  return *c ? (*c)->position() : Position{};
}

Result<AppendResult> EventStore::append(const StreamId& stream, Position expected, std::vector<EventData> events,
                                        AppendOptions options) {
  if (auto v = stream.validate(); !v) return std::move(v).error();
  if (events.empty()) return make_error(errc::validation, "append to '" + stream.key() + "' without events");
  const auto deadline = Clock::now() + impl_->options.timeout;
  const std::string subject = impl_->options.subject(stream);

  if (expected.version > 0 && expected.sequence == 0) {
    // Only the version is known: find the sequence of the commit ending there.
    // The server still checks that sequence, so this read cannot let a
    // concurrent append slip through.
    auto last = last_commit(stream);
    if (!last) return std::move(last).error();
    if (!*last || (*last)->last_version() != expected.version) {
      return make_error(errc::conflict,
                        "'" + stream.key() + "' is at version " + std::to_string(*last ? (*last)->last_version() : 0) +
                            ", expected " + std::to_string(expected.version),
                        true);
    }
    expected.sequence = (*last)->sequence;
  }

  fill_metadata(options);
  Commit commit;
  commit.stream = stream;
  commit.commit_id = options.commit_id;
  commit.events.reserve(events.size());
  const auto now = std::chrono::system_clock::now();
  std::uint64_t version = expected.version;
  for (auto& e : events) {
    if (e.type.empty()) return make_error(errc::validation, "event without type appended to '" + stream.key() + "'");
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

  nats::detail::MsgHandle msg;
  if (natsStatus s = natsMsg_Create(msg.out(), subject.c_str(), nullptr, body.data(), static_cast<int>(body.size()));
      s != NATS_OK) {
    return to_error(s, "create commit message");
  }
  if (auto h = nats::detail::set_header(msg.get(), "Content-Type", "application/json"); !h) return std::move(h).error();
  if (auto h = nats::detail::set_header(msg.get(), detail::kVersionHeader, std::to_string(version)); !h) {
    return std::move(h).error();
  }

  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MsgId = msg_id.c_str();
  if (expected.version == 0) {
    po.ExpectNoMessage = true;
  } else {
    po.ExpectLastSubjectSeq = expected.sequence;
  }

  auto pause = std::chrono::milliseconds(20);
  for (;;) {
    // One try waits at most attempt_timeout: a publish that reached a leader
    // which then crashed is never answered.
    po.MaxWait = std::min<std::int64_t>(remaining_ms(deadline),
                                        std::max<std::int64_t>(impl_->options.attempt_timeout.count(), 1));
    nats::detail::PubAckHandle ack;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus s = js_PublishMsg(ack.out(), impl_->jet(), msg.get(), &po, &jerr);
    if (s == NATS_OK) {
      // A duplicate ack means this exact Nats-Msg-Id, commit id included,
      // is stored: an earlier try of this append.
      const std::uint64_t seq = ack.get()->Sequence;
      return AppendResult{Position{version, seq}, expected.version + 1, ack.get()->Duplicate};
    }
    Error err = to_error(s, jerr, "append to '" + stream.key() + "'", Surface::jetstream);
    if (jerr == JSStreamWrongLastSequenceErr) {
      // Either someone else appended, or this is our own earlier try whose
      // ack was lost (an R3 cluster checks the sequence before dedup).
      auto last = last_commit(stream);
      if (!last) return std::move(last).error();
      if (*last && (*last)->commit_id == commit.commit_id && (*last)->last_version() == version) {
        return AppendResult{Position{version, (*last)->sequence}, expected.version + 1, true};
      }
      return make_error(errc::conflict,
                        "'" + stream.key() + "' moved past version " + std::to_string(expected.version), true);
    }
    if (!err.retryable || Clock::now() + pause >= deadline) return err;
    // Lost ack, leader change, reconnect: send the same message again; the
    // server deduplicates it by Nats-Msg-Id or the branch above recognises it.
    nats::detail::log().debug("catga.es append to '{}' retried: {}", stream.key(), err.message);
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
}

Result<std::vector<Commit>> EventStore::read(const StreamId& stream, ReadOptions options) {
  if (auto v = stream.validate(); !v) return std::move(v).error();
  const auto deadline = Clock::now() + impl_->options.timeout;
  bool cut = false;
  auto out = read_once(stream, options, deadline, cut);
  if (!out || cut || impl_->options.stream.replicas <= 1) return out;
  // Replicated stream: a consumer created right after a leader change may
  // count from a replica that has not caught up. The leader's last message
  // of the subject says where the stream really ends; read on until there.
  for (int round = 0; round < 20 && Clock::now() < deadline; ++round) {
    auto last = last_commit(stream);
    if (!last) return std::move(last).error();
    const std::uint64_t have = out->empty() ? options.after_sequence : out->back().sequence;
    if (!*last || (*last)->sequence <= have) return out;
    ReadOptions more = options;
    more.after_sequence = have;
    auto tail = read_once(stream, more, deadline, cut);
    if (!tail) return tail;
    for (auto& c : *tail) out->push_back(std::move(c));
    if (cut) return out;
    if (tail->empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return make_error(errc::unavailable, "read '" + stream.key() + "': the stream's replicas did not catch up", true);
}

Result<std::vector<Commit>> EventStore::read_once(const StreamId& stream, const ReadOptions& options,
                                                  std::chrono::steady_clock::time_point deadline, bool& cut) {
  cut = false;
  const std::string subject = impl_->options.subject(stream);
  std::vector<Commit> out;

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
  nats::detail::ConsumerInfoHandle info;
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
  struct DeleteConsumer {
    EventStore::Impl& impl;
    const std::string& name;
    ~DeleteConsumer() {
      jsOptions o;
      jsOptions_Init(&o);
      o.Wait = 2'000;
      js_DeleteConsumer(impl.jet(), impl.stream_name.c_str(), name.c_str(), &o, nullptr);
    }
  } cleanup{*impl_, name};
  if (pending == 0) return out;

  nats::detail::InboxHandle inbox;
  if (s = natsInbox_Create(inbox.out()); s != NATS_OK) return to_error(s, "create inbox");
  nats::detail::SubscriptionHandle sub;
  if (s = natsConnection_SubscribeSync(sub.out(), impl_->nc(), inbox.get()); s != NATS_OK) {
    return to_error(s, "subscribe to read inbox");
  }
  natsSubscription_SetPendingLimits(sub.get(), -1, -1);
  const std::string next = "$JS.API.CONSUMER.MSG.NEXT." + impl_->stream_name + "." + name;
  char req[96];
  const int len = std::snprintf(req, sizeof req, "{\"batch\":%llu,\"expires\":%lld}",
                                static_cast<unsigned long long>(pending),
                                static_cast<long long>(std::chrono::nanoseconds(impl_->options.timeout).count()));
  if (s = natsConnection_PublishRequest(impl_->nc(), next.c_str(), inbox.get(), req, len); s != NATS_OK) {
    return to_error(s, "read '" + stream.key() + "' (pull)");
  }
  out.reserve(static_cast<std::size_t>(pending));
  for (std::uint64_t got = 0; got < pending;) {
    nats::detail::MsgHandle m;
    s = natsSubscription_NextMsg(m.out(), sub.get(), remaining_ms(deadline));
    if (s != NATS_OK) return to_error(s, "read '" + stream.key() + "'", Surface::jetstream);
    const auto reply = nats::detail::reply_of(m.get());
    if (reply.empty()) {
      const auto status = nats::detail::get_header(m.get(), kStatusHeader);
      const int code = status ? nats::detail::parse_status_code(*status) : 0;
      if (code == 100) continue;
      return make_error(errc::unavailable,
                        "read '" + stream.key() + "': pull ended with status " + std::to_string(code) + " after " +
                            std::to_string(got) + " of " + std::to_string(pending) + " commits",
                        true);
    }
    ++got;
    const auto meta = nats::detail::parse_ack_reply(reply);
    auto c = detail::decode_commit(nats::detail::body_of(m.get()), meta ? meta->stream_seq : 0, impl_->upcasters());
    if (!c) return std::move(c).error();
    // Time travel: keep the events up to the bound, then stop.
    auto& ev = c->events;
    for (std::size_t i = 0; i < ev.size(); ++i) {
      if ((options.to_version && ev[i].version > *options.to_version) || (options.to_time && ev[i].time > *options.to_time)) {
        ev.resize(i);
        cut = true;
        break;
      }
    }
    if (!ev.empty()) out.push_back(std::move(*c));
    if (cut) break;
  }
  return out;
}

}  // namespace catga::eventsourcing
