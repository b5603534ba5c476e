#include "catga/eventsourcing/event_relay.hpp"

#include <algorithm>
#include <atomic>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "catga/nats/native/error.hpp"
#include "catga/nats/native/message.hpp"
#include "catga/wire.hpp"
#include "commit_codec.hpp"
#include "commit_feed.hpp"
#include "event_store_impl.hpp"
#include "log.hpp"

namespace catga::eventsourcing {

using nats::native::to_error;

struct EventRelay::Impl {
  std::shared_ptr<EventStore> store;
  EventRelayOptions options;
  nats::native::JsHandle js;  // async publishing, errors counted below
  std::atomic<std::uint64_t> failures{0};
  std::atomic<std::uint64_t> published{0};
  std::atomic<std::uint64_t> ignored{0};
  bool replicated = false;  // the store stream has more than one replica
  std::unique_ptr<detail::CommitFeed> feed;
  // Feed thread only: per stream, the last commit relayed (stream sequence,
  // last version). Bounded: cleared when it grows past kTracked streams.
  struct Relayed {
    std::uint64_t sequence = 0;
    std::uint64_t version = 0;
  };
  static constexpr std::size_t kTracked = 65'536;
  std::unordered_map<std::string, Relayed> relayed;
  // What the current batch changed in `relayed` (stream, entry before it;
  // nullopt: none). A failed batch is retried in place: it is undone, so the
  // retry does not see the batch's own commits as relayed, yet still knows
  // the commits of earlier batches (clearing it all lost those: on an R1
  // stream a double append whose first commit came in an earlier batch was
  // then relayed by the retry).
  std::vector<std::pair<std::string, std::optional<Relayed>>> undo;

  void note_relayed(const Commit& c) {
    const auto [it, added] = relayed.try_emplace(c.stream.key());
    undo.emplace_back(it->first, added ? std::nullopt : std::optional<Relayed>(it->second));
    it->second = {std::max(it->second.sequence, c.sequence), std::max(it->second.version, c.last_version())};
  }
  void undo_batch() {
    for (auto u = undo.rbegin(); u != undo.rend(); ++u) {
      if (u->second) {
        relayed[u->first] = *u->second;
      } else {
        relayed.erase(u->first);
      }
    }
    undo.clear();
  }

  std::string consumer() const { return "es_relay_" + options.name; }

  static void on_error(jsCtx*, jsPubAckErr*, void* closure) {
    static_cast<Impl*>(closure)->failures.fetch_add(1, std::memory_order_relaxed);
  }

  Status publish_event(const Commit& c, const RecordedEvent& e) {
    Context ctx = Context::root();
    if (auto id = MessageId::parse(e.id)) ctx.message_id = *id;
    if (auto id = MessageId::parse(e.correlation_id)) ctx.correlation_id = *id;
    ctx.causation_id = MessageId{};
    if (auto id = MessageId::parse(e.causation_id)) ctx.causation_id = *id;
    const std::string subject = wire::event_subject(options.events_prefix, e.type);
    const std::string body = e.data.dump();
    nats::native::MsgHandle msg;
    if (natsStatus s = natsMsg_Create(msg.out(), subject.c_str(), nullptr, body.data(), static_cast<int>(body.size()));
        s != NATS_OK) {
      return to_error(s, "create event message");
    }
    Status hs;
    auto put = [&](std::string_view k, std::string_view v) {
      if (hs) hs = nats::native::set_header(msg.get(), k, v);
    };
    // The data is in the store's current schema (read through its upcasters):
    // consumers with upcasters of their own must not upcast it again.
    wire::write_headers(ctx, e.type, put, /*with_deadline=*/true, e.schema);
    put("Catga-Es-Stream", c.stream.key());
    put("Catga-Es-Version", std::to_string(e.version));
    if (!e.actor.empty()) put("Catga-Es-Actor", e.actor);
    if (!hs) return hs;
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = options.publish_timeout.count();
    natsMsg* raw = msg.get();
    const natsStatus s = js_PublishMsgAsync(js.get(), &raw, &po);
    if (s != NATS_OK) return to_error(s, "relay '" + subject + "'", nats::native::Surface::jetstream);
    (void)msg.release();  // js_PublishMsgAsync took it
    published.fetch_add(1, std::memory_order_relaxed);
    return {};
  }

  // The store's read rule: is `d` a second commit claiming versions an
  // earlier commit of its stream holds? Known without asking when this
  // instance relayed the earlier one. On a replicated stream (where the
  // server may let a second conditional append through) a commit written by
  // EventStore::append is also checked with the stream leader: which commit
  // followed the one it expected (one request per commit; another instance
  // may have relayed the earlier one).
  Result<bool> double_append(const detail::Delivered& d) {
    const Commit& c = d.commit;
    const auto known = relayed.find(c.stream.key());
    if (known != relayed.end() && c.sequence > known->second.sequence && c.first_version() <= known->second.version) {
      return true;
    }
    if (!replicated || !d.expected_sequence) return false;
    auto next = detail::CommitFeed::next_matching(*store, store->options().subject(c.stream), *d.expected_sequence + 1);
    if (!next) return std::move(next).error();
    return *next != 0 && *next < c.sequence;
  }

  // One batch; a failure (or exception) undoes what it noted in `relayed`.
  Status relay(std::vector<detail::Delivered>& batch) {
    if (relayed.size() > kTracked) relayed.clear();
    undo.clear();
    try {
      Status s = relay_batch(batch);
      if (!s) undo_batch();
      return s;
    } catch (...) {
      undo_batch();
      throw;
    }
  }

  Status relay_batch(std::vector<detail::Delivered>& batch) {
    const auto before = failures.load();
    for (auto& d : batch) {
      auto twice = double_append(d);
      if (!twice) return std::move(twice).error();
      if (*twice) {
        ignored.fetch_add(1, std::memory_order_relaxed);
        detail::log().warn(
            "catga.es relay: commit {} of '{}' at sequence {} claims version {} already held by an earlier commit; "
            "not relayed (a second conditional append was let through)",
            d.commit.commit_id, d.commit.stream.key(), d.commit.sequence, d.commit.first_version());
        continue;
      }
      for (auto& e : d.commit.events) {
        if (auto s = publish_event(d.commit, e); !s) return s;
      }
      note_relayed(d.commit);
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = options.publish_timeout.count();
    natsStatus s = js_PublishAsyncComplete(js.get(), &po);
    if (s == NATS_OK && failures.load() != before) s = NATS_ERR;
    if (s != NATS_OK) {
      if (failures.load() != before) return make_error(errc::unavailable, "relay: the events stream refused events", true);
      return to_error(s, "relay: wait for the events stream", nats::native::Surface::jetstream);
    }
    return {};
  }
};

EventRelay::EventRelay(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
EventRelay::~EventRelay() { stop(); }
std::uint64_t EventRelay::published() const noexcept { return impl_->published.load(); }

EventRelayHealth EventRelay::health() const {
  EventRelayHealth h;
  h.published = impl_->published.load();
  h.ignored = impl_->ignored.load();
  if (impl_->feed) {
    auto f = impl_->feed->health();
    h.dead_lettered = f.dead_lettered;
    h.last_error = std::move(f.last_error);
  }
  return h;
}
void EventRelay::stop() noexcept {
  if (impl_->feed) impl_->feed->stop();  // kept: health() still reads its counters
}

Result<std::uint64_t> EventRelay::lag() const {
  auto i = detail::CommitFeed::info(*impl_->store, impl_->consumer());
  if (!i) return std::move(i).error();
  if (!*i) return make_error(errc::unavailable, "relay consumer '" + impl_->consumer() + "' is gone", true);
  return (*i)->pending + (*i)->ack_pending;
}

Result<std::unique_ptr<EventRelay>> EventRelay::start(std::shared_ptr<EventStore> store, EventRelayOptions options) {
  if (!store) return make_error(errc::validation, "relay without event store");
  if (auto v = wire::check_subject(options.events_prefix, "EventRelay: events_prefix"); !v) return std::move(v).error();
  // The name is part of its consumer's name, a token of $JS.API subjects.
  if (auto v = wire::check_subject(options.name, "EventRelay: name", wire::SubjectPart::token); !v) {
    return std::move(v).error();
  }
  auto impl = std::make_unique<Impl>();
  impl->store = std::move(store);
  impl->options = std::move(options);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = impl->options.publish_timeout.count();
  jo.PublishAsync.MaxPending = 4'096;
  jo.PublishAsync.ErrHandler = &Impl::on_error;
  jo.PublishAsync.ErrHandlerClosure = impl.get();
  if (natsStatus s = natsConnection_JetStream(impl->js.out(), impl->store->impl().nc(), &jo); s != NATS_OK) {
    return to_error(s, "JetStream context for the relay");
  }
  {
    jsStreamInfo* info = nullptr;
    const natsStatus s = js_GetStreamInfo(&info, impl->js.get(), impl->store->impl().stream_name.c_str(), &jo, nullptr);
    if (s != NATS_OK) return to_error(s, "relay: the event store stream", nats::native::Surface::jetstream);
    impl->replicated = info->Config->Replicas > 1;
    jsStreamInfo_Destroy(info);
  }
  detail::CommitFeed::Config cfg{impl->consumer(),
                                 impl->options.filter.empty() ? impl->store->options().all_subjects() : impl->options.filter,
                                 impl->options.batch, impl->options.ack_wait};
  // A stored event whose type cannot be a subject (written by another
  // producer) is never published: the commit goes to the dead letters.
  cfg.accept = [](const Commit& c) -> Status {
    for (const auto& e : c.events) {
      if (auto v = wire::check_subject(e.type, "event type"); !v) return v;
    }
    return {};
  };
  if (auto s = detail::CommitFeed::ensure_consumer(*impl->store, cfg, 0); !s) return std::move(s).error();
  auto raw = impl.get();
  auto f = detail::CommitFeed::start(impl->store, cfg, [raw](std::vector<detail::Delivered>& b) { return raw->relay(b); });
  if (!f) return std::move(f).error();
  impl->feed = std::move(*f);
  return std::unique_ptr<EventRelay>(new EventRelay(std::move(impl)));
}

}  // namespace catga::eventsourcing
