#include "commit_feed.hpp"

#include <algorithm>
#include <cstdio>

#include "ack_reply.hpp"
#include "commit_codec.hpp"
#include "error.hpp"
#include "event_store_impl.hpp"
#include "log.hpp"
#include "message.hpp"

namespace catga::eventsourcing::detail {

using nats::detail::Surface;
using nats::detail::to_error;
using Clock = std::chrono::steady_clock;

namespace {
constexpr auto kExpires = std::chrono::seconds(2);
constexpr auto kGrace = std::chrono::seconds(2);
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
  nats::detail::ConsumerInfoHandle ci;
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
  nats::detail::ConsumerInfoHandle ci;
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
}

Result<std::unique_ptr<CommitFeed>> CommitFeed::start(std::shared_ptr<EventStore> store, Config config, Handler handler) {
  config.batch = std::max(config.batch, 1);
  std::unique_ptr<CommitFeed> feed(new CommitFeed(std::move(store), std::move(config), std::move(handler)));
  auto& impl = feed->store_->impl();
  feed->next_subject_ = "$JS.API.CONSUMER.MSG.NEXT." + impl.stream_name + "." + feed->config_.consumer;
  nats::detail::InboxHandle inbox;
  if (natsStatus s = natsInbox_Create(inbox.out()); s != NATS_OK) return to_error(s, "create inbox");
  feed->inbox_ = inbox.get();
  if (natsStatus s = natsConnection_SubscribeSync(feed->sub_.out(), impl.nc(), (feed->inbox_ + ".*").c_str()); s != NATS_OK) {
    return to_error(s, "subscribe to pull inbox");
  }
  natsSubscription_SetPendingLimits(feed->sub_.get(), -1, -1);
  feed->thread_ = std::thread([raw = feed.get()] { raw->run(); });
  return feed;
}

void CommitFeed::reply(const std::string& subject, std::string_view body) noexcept {
  natsConnection_Publish(store_->impl().nc(), subject.c_str(), body.data(), static_cast<int>(body.size()));
}

void CommitFeed::run() noexcept {
  auto& impl = store_->impl();
  std::uint64_t request_id = 0;
  bool open = false;
  int remaining = 0;
  Clock::time_point request_deadline{};
  auto pause = std::chrono::milliseconds(50);
  std::vector<Delivered> batch;
  while (!stop_) {
    try {
      if (!open || Clock::now() > request_deadline) {
        char body[96];
        const int len = std::snprintf(body, sizeof body, "{\"batch\":%d,\"expires\":%lld}", config_.batch,
                                      static_cast<long long>(std::chrono::nanoseconds(kExpires).count()));
        const std::string reply_to = inbox_ + "." + std::to_string(++request_id);
        if (natsConnection_PublishRequest(impl.nc(), next_subject_.c_str(), reply_to.c_str(), body, len) != NATS_OK) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          continue;
        }
        open = true;
        remaining = config_.batch;
        request_deadline = Clock::now() + kExpires + kGrace;
      }
      // The first message may take a while; once messages flow, gather
      // what is already there (up to the batch) and hand it over.
      batch.clear();
      const std::string current = inbox_ + "." + std::to_string(request_id);
      int wait_ms = 100;
      while (open && static_cast<int>(batch.size()) < config_.batch) {
        nats::detail::MsgHandle m;
        if (natsSubscription_NextMsg(m.out(), sub_.get(), wait_ms) != NATS_OK) break;
        wait_ms = 2;
        const auto reply_subject = nats::detail::reply_of(m.get());
        if (reply_subject.empty()) {  // status of a pull request
          const auto st = nats::detail::get_header(m.get(), "Status");
          const int code = st ? nats::detail::parse_status_code(*st) : 0;
          if (code != 100 && nats::detail::subject_of(m.get()) == current) open = false;
          continue;
        }
        if (--remaining <= 0) open = false;
        const auto meta = nats::detail::parse_ack_reply(reply_subject);
        auto c = decode_commit(nats::detail::body_of(m.get()), meta ? meta->stream_seq : 0, impl.upcasters());
        if (!c) {
          nats::detail::log().error("catga.es consumer '{}': {}; terminated", config_.consumer, c.error().message);
          reply(std::string(reply_subject), "+TERM");
          continue;
        }
        batch.push_back(Delivered{std::move(*c), std::string(reply_subject)});
      }
      if (batch.empty()) continue;
      // A failed batch is retried in place (never nak'ed), so later commits
      // are never handled before earlier ones.
      for (;;) {
        Status s;
        try {
          s = handler_(batch);
        } catch (const std::exception& e) {
          s = make_error(errc::exception, e.what());
        }
        if (s) {
          for (auto& d : batch) reply(d.reply, "+ACK");
          pause = std::chrono::milliseconds(50);
          break;
        }
        nats::detail::log().warn("catga.es consumer '{}': batch failed, retrying: {}", config_.consumer,
                                 s.error().message);
        if (stop_) break;  // unacked: redelivered to the next run
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::milliseconds(2'000));
        for (auto& d : batch) reply(d.reply, "+WPI");
      }
    } catch (...) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

}  // namespace catga::eventsourcing::detail
