#include "commit_feed.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "catga/nats/ack_reply.hpp"
#include "catga/nats/native/error.hpp"
#include "catga/nats/native/message.hpp"
#include "commit_codec.hpp"
#include "commit_dead_letter.hpp"
#include "event_store_impl.hpp"
#include "log.hpp"

namespace catga::eventsourcing::detail {

using nats::native::Surface;
using nats::native::to_error;
using Clock = std::chrono::steady_clock;

namespace {
constexpr auto kExpires = std::chrono::seconds(2);
constexpr auto kGrace = std::chrono::seconds(2);
}  // namespace

Result<std::uint64_t> CommitFeed::next_matching(EventStore& store, const std::string& filter, std::uint64_t from) {
  auto& impl = store.impl();
  const std::string subject = "$JS.API.STREAM.MSG.GET." + impl.stream_name;
  const std::string body = nlohmann::json{{"seq", from}, {"next_by_subj", filter}}.dump();
  nats::native::MsgHandle answer;
  const natsStatus s = natsConnection_Request(answer.out(), impl.nc(), subject.c_str(), body.data(),
                                              static_cast<int>(body.size()),
                                              std::max<std::int64_t>(store.options().attempt_timeout.count(), 1));
  if (s != NATS_OK) return to_error(s, "look up the commit after #" + std::to_string(from - 1), Surface::jetstream);
  const auto j = nlohmann::json::parse(nats::native::body_of(answer.get()), nullptr, false);
  if (j.is_discarded()) return make_error(errc::malformed, "stream message lookup: answer is not JSON");
  if (const auto m = j.find("message"); m != j.end() && m->is_object()) return m->value("seq", std::uint64_t{0});
  if (const auto e = j.find("error"); e != j.end() && e->is_object() && e->value("err_code", 0) == 10037) {
    return std::uint64_t{0};  // no message found
  }
  return make_error(errc::unavailable, "stream message lookup: " + j.dump(), true);
}

namespace {
jsOptions api_options(const EventStore& store) {
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = std::max<std::int64_t>(store.options().timeout.count(), 1);
  return jo;
}
}  // namespace

Status CommitFeed::ensure_consumer(EventStore& store, const Config& config, std::uint64_t start_after) {
  auto& impl = store.impl();
  jsOptions jo = api_options(store);
  nats::native::ConsumerInfoHandle ci;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetConsumerInfo(ci.out(), impl.jet(), impl.stream_name.c_str(), config.consumer.c_str(), &jo, &jerr);
  if (s == NATS_OK) return {};
  if (s != NATS_NOT_FOUND && jerr != JSConsumerNotFoundErr) {
    return to_error(s, jerr, "look up consumer '" + config.consumer + "'", Surface::jetstream);
  }
  jsConsumerConfig cfg;
  jsConsumerConfig_Init(&cfg);
  cfg.Durable = config.consumer.c_str();
  cfg.FilterSubject = config.filter.c_str();
  cfg.AckPolicy = js_AckExplicit;
  cfg.AckWait = std::chrono::nanoseconds(config.ack_wait).count();
  cfg.MaxDeliver = -1;
  cfg.MaxAckPending = std::max(config.batch * 4, 1'000);
  cfg.DeliverPolicy = start_after > 0 ? js_DeliverByStartSequence : js_DeliverAll;
  cfg.OptStartSeq = start_after > 0 ? start_after + 1 : 0;
  cfg.ReplayPolicy = js_ReplayInstant;
  cfg.InactiveThreshold = std::chrono::nanoseconds(config.inactive_threshold).count();
  jerr = static_cast<jsErrCode>(0);
  s = js_AddConsumer(ci.out(), impl.jet(), impl.stream_name.c_str(), &cfg, &jo, &jerr);
  if (s != NATS_OK && jerr != JSConsumerNameExistErr) {
    return to_error(s, jerr, "create consumer '" + config.consumer + "'", Surface::jetstream);
  }
  return {};
}

Status CommitFeed::delete_consumer(EventStore& store, const std::string& consumer) {
  auto& impl = store.impl();
  jsOptions jo = api_options(store);
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_DeleteConsumer(impl.jet(), impl.stream_name.c_str(), consumer.c_str(), &jo, &jerr);
  if (s != NATS_OK && s != NATS_NOT_FOUND && jerr != JSConsumerNotFoundErr) {
    return to_error(s, jerr, "delete consumer '" + consumer + "'", Surface::jetstream);
  }
  return {};
}

Result<std::optional<CommitFeed::Info>> CommitFeed::info(EventStore& store, const std::string& consumer) {
  auto& impl = store.impl();
  jsOptions jo = api_options(store);
  nats::native::ConsumerInfoHandle ci;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetConsumerInfo(ci.out(), impl.jet(), impl.stream_name.c_str(), consumer.c_str(), &jo, &jerr);
  if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr) return std::optional<Info>();
  if (s != NATS_OK) return to_error(s, jerr, "consumer info '" + consumer + "'", Surface::jetstream);
  Info i;
  i.ack_floor = ci.get()->AckFloor.Stream;
  i.pending = ci.get()->NumPending;
  i.ack_pending = static_cast<std::uint64_t>(std::max<std::int64_t>(ci.get()->NumAckPending, 0));
  return std::optional<Info>(i);
}

CommitFeed::CommitFeed(std::shared_ptr<EventStore> store, Config config, Handler handler)
    : store_(std::move(store)), config_(std::move(config)), handler_(std::move(handler)) {}

CommitFeed::~CommitFeed() { stop(); }

void CommitFeed::stop() noexcept {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  // Pull requests may still be open: the server can still send to the inbox.
  if (sub_) nats::native::retire(*store_->impl().connection, std::move(sub_), std::chrono::milliseconds(1'000));
}

CommitFeed::Health CommitFeed::health() const {
  std::lock_guard lock(health_mu_);
  return health_;
}

void CommitFeed::note(const Error& e) {
  std::lock_guard lock(health_mu_);
  health_.last_error = e.code + ": " + e.message;
}

Result<std::unique_ptr<CommitFeed>> CommitFeed::start(std::shared_ptr<EventStore> store, Config config, Handler handler,
                                                      std::uint64_t start_after) {
  config.batch = std::max(config.batch, 1);
  std::unique_ptr<CommitFeed> feed(new CommitFeed(std::move(store), std::move(config), std::move(handler)));
  auto& impl = feed->store_->impl();
  feed->cursor_ = start_after;
  feed->next_subject_ = "$JS.API.CONSUMER.MSG.NEXT." + impl.stream_name + "." + feed->config_.consumer;
  if (auto s = feed->subscribe_inbox(); !s) return std::move(s).error();
  feed->thread_ = std::thread([raw = feed.get()] { raw->run(); });
  return feed;
}

Status CommitFeed::subscribe_inbox() {
  auto& impl = store_->impl();
  nats::native::InboxHandle inbox;
  if (natsStatus s = natsInbox_Create(inbox.out()); s != NATS_OK) return to_error(s, "create inbox");
  nats::native::SubscriptionHandle sub;
  if (natsStatus s = natsConnection_SubscribeSync(sub.out(), impl.nc(), (std::string(inbox.get()) + ".*").c_str());
      s != NATS_OK) {
    return to_error(s, "subscribe to pull inbox");
  }
  natsSubscription_SetPendingLimits(sub.get(), -1, -1);
  if (sub_) nats::native::retire(*impl.connection, std::move(sub_), std::chrono::milliseconds(1'000));
  sub_ = std::move(sub);
  inbox_ = inbox.get();
  return {};
}

void CommitFeed::reply(std::string_view subject, std::string_view body) noexcept {
  const std::string s(subject);
  natsConnection_Publish(store_->impl().nc(), s.c_str(), body.data(), static_cast<int>(body.size()));
}

void CommitFeed::run() noexcept {
  std::vector<Delivered> batch;
  while (!stop_) {
    try {
      if (reposition_) {
        reposition();
        continue;
      }
      if (open_ && Clock::now() > request_deadline_ && config_.ordered && !answered_) {
        // No answer at all, not even the expiry: the server does not answer
        // pulls on a consumer that does not exist.
        auto i = info(*store_, config_.consumer);
        if (i && !*i) {
          reposition_ = true;
          continue;
        }
      }
      if (!open_ || Clock::now() > request_deadline_) pull();
      if (!open_) continue;
      batch.clear();
      collect(batch);
      if (!batch.empty()) hand_over(batch);
    } catch (...) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

void CommitFeed::pull() {
  char body[96];
  const int len = std::snprintf(body, sizeof body, "{\"batch\":%d,\"expires\":%lld}", config_.batch,
                                static_cast<long long>(std::chrono::nanoseconds(kExpires).count()));
  const std::string reply_to = inbox_ + "." + std::to_string(request_id_ + 1);
  if (natsConnection_PublishRequest(store_->impl().nc(), next_subject_.c_str(), reply_to.c_str(), body, len) != NATS_OK) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return;
  }
  ++request_id_;
  open_ = true;
  answered_ = false;
  remaining_ = config_.batch;
  request_deadline_ = Clock::now() + kExpires + kGrace;
}

void CommitFeed::collect(std::vector<Delivered>& batch) {
  // The first message may take a while; once messages flow, gather what is
  // already there (up to the batch) and hand it over.
  auto& impl = store_->impl();
  const std::string current = inbox_ + "." + std::to_string(request_id_);
  int wait_ms = 100;
  while (open_ && static_cast<int>(batch.size()) < config_.batch && !reposition_) {
    nats::native::MsgHandle m;
    if (natsSubscription_NextMsg(m.out(), sub_.get(), wait_ms) != NATS_OK) break;
    wait_ms = 2;
    const auto subject = nats::native::subject_of(m.get());
    const auto reply_subject = nats::native::reply_of(m.get());
    if (subject == current) answered_ = true;
    if (reply_subject.empty()) {  // status of a pull request
      const auto st = nats::native::get_header(m.get(), "Status");
      const int code = st ? nats::parse_status_code(*st) : 0;
      if (code == 100 || subject != current) continue;
      open_ = false;
      // The consumer was deleted (its inactivity threshold, an operator):
      // an ordered feed creates it again after the last commit it took.
      const auto why = nats::native::get_header(m.get(), "Description");
      if (config_.ordered && (code == 503 || (code == 409 && why && *why == "Consumer Deleted"))) reposition_ = true;
      break;
    }
    // A delivery carries the stored message's subject, not the request's.
    if (--remaining_ <= 0) open_ = false;
    const auto meta = nats::parse_ack_reply(reply_subject);
    const std::uint64_t seq = meta ? meta->stream_seq : 0;
    if (config_.ordered && meta && !in_order(seq, meta->consumer_seq)) break;
    auto c = decode_commit(nats::native::body_of(m.get()), seq, impl.upcasters());
    const Status usable = !c ? Status(c.error()) : config_.accept ? config_.accept(*c) : Status{};
    if (!usable) {
      if (!park(m.get(), reply_subject, seq, meta ? meta->delivered : 1, usable.error())) break;
      continue;
    }
    std::optional<std::uint64_t> expected;
    if (const auto h = nats::native::get_header(m.get(), kExpectedHeader)) {
      std::uint64_t v = 0;
      const auto [end, ec] = std::from_chars(h->data(), h->data() + h->size(), v);
      if (ec == std::errc{} && end == h->data() + h->size()) expected = v;
    }
    batch.push_back(Delivered{std::move(*c), std::string(reply_subject), expected});
  }
}

bool CommitFeed::in_order(std::uint64_t seq, std::uint64_t cseq) {
  const std::uint64_t expected = expect_cseq_;
  expect_cseq_ = cseq + 1;
  if (seq <= cursor_) return true;  // a redelivery of what was taken (the handler skips it)
  if (seq == cursor_ + 1 || cseq == expected) {
    cursor_ = seq;
    return true;
  }
  // A consumer sequence out of line: did the consumer jump over a commit?
  auto next = next_matching(*store_, config_.filter, cursor_ + 1);
  if (next && (*next == seq || *next == 0)) {
    cursor_ = seq;
    return true;
  }
  if (next) {
    detail::log().warn("catga.es consumer '{}': delivered #{} but #{} was never handed over; reading again from #{}",
                             config_.consumer, seq, *next, *next);
  } else {
    note(next.error());
    detail::log().warn("catga.es consumer '{}': cannot check #{} ({}); reading again after #{}", config_.consumer,
                             seq, next.error().message, cursor_);
  }
  reposition_ = true;
  return false;
}

bool CommitFeed::park(natsMsg* m, std::string_view reply_subject, std::uint64_t seq, std::uint64_t deliveries,
                      const Error& error) {
  auto stored = dead_letter_commit(*store_, m, config_.consumer, seq, deliveries, error);
  if (stored) {
    reply(reply_subject, "+TERM");
    {
      std::lock_guard lock(health_mu_);
      ++health_.dead_lettered;
      health_.last_error = "commit #" + std::to_string(seq) + " dead-lettered: " + error.message;
    }
    detail::log().error("catga.es consumer '{}': commit #{} cannot be read ({}); stored as a dead letter",
                              config_.consumer, seq, error.message);
    return true;
  }
  note(make_error(stored.error().code, "commit #" + std::to_string(seq) + " (" + error.message +
                                           ") could not be dead-lettered: " + stored.error().message));
  detail::log().error("catga.es consumer '{}': commit #{} cannot be read ({}) nor dead-lettered ({}); kept",
                            config_.consumer, seq, error.message, stored.error().message);
  if (config_.ordered) {
    // Stop before it: the batch so far is handed over, then read again from it.
    if (seq > 0 && cursor_ >= seq) cursor_ = seq - 1;
    reposition_ = true;
    std::this_thread::sleep_for(pause_);  // not a loop of consumer re-creations
    pause_ = std::min(pause_ * 2, std::chrono::milliseconds(2'000));
    return false;
  }
  reply(reply_subject, "-NAK {\"delay\":5000000000}");
  return true;
}

void CommitFeed::hand_over(std::vector<Delivered>& batch) {
  // A failed batch is retried in place (never nak'ed), so later commits are
  // never handled before earlier ones.
  for (;;) {
    Status s;
    try {
      s = handler_(batch);
    } catch (const std::exception& e) {
      s = make_error(errc::exception, e.what());
    }
    if (s) {
      for (auto& d : batch) reply(d.reply, "+ACK");
      pause_ = std::chrono::milliseconds(50);
      return;
    }
    note(s.error());
    detail::log().warn("catga.es consumer '{}': batch failed, retrying: {}", config_.consumer, s.error().message);
    if (stop_) return;  // unacked: redelivered to the next run
    std::this_thread::sleep_for(pause_);
    pause_ = std::min(pause_ * 2, std::chrono::milliseconds(2'000));
    for (auto& d : batch) reply(d.reply, "+WPI");
  }
}

void CommitFeed::reposition() {
  open_ = false;
  auto s = delete_consumer(*store_, config_.consumer);
  if (s) s = ensure_consumer(*store_, config_, cursor_);
  if (!s) {
    note(s.error());
    detail::log().warn("catga.es consumer '{}': cannot create it again after #{}: {}", config_.consumer, cursor_,
                             s.error().message);
    std::this_thread::sleep_for(pause_);
    pause_ = std::min(pause_ * 2, std::chrono::milliseconds(2'000));
    return;
  }
  // What the deleted consumer may still send goes to the old inbox.
  if (auto fresh = subscribe_inbox(); !fresh) {
    note(fresh.error());
    return;
  }
  expect_cseq_ = 1;
  reposition_ = false;
  detail::log().info("catga.es consumer '{}' created again, after #{}", config_.consumer, cursor_);
  std::lock_guard lock(health_mu_);
  ++health_.repositioned;
}

}  // namespace catga::eventsourcing::detail
