#include "ordered_group.hpp"

#include <algorithm>
#include <charconv>
#include <random>

#include "error.hpp"
#include "handle.hpp"
#include "js_api.hpp"
#include "log.hpp"
#include "provisioning.hpp"
#include "thread_name.hpp"

namespace catga::nats::detail {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::string_view kReleased = "released";

std::uint64_t mix(std::string_view member, std::uint32_t partition) noexcept {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a 64, then a final mix
  for (unsigned char c : member) h = (h ^ c) * 1099511628211ULL;
  h = (h ^ partition) * 1099511628211ULL;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

std::string random_member_id() {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(gen()));
  return buf;
}

// "<id> <beat>\n" per member.
std::map<std::string, std::uint64_t> parse_members(std::string_view text) {
  std::map<std::string, std::uint64_t> out;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    const auto sp = line.find(' ');
    if (sp == std::string_view::npos || sp == 0) continue;
    std::uint64_t beat = 0;
    const auto digits = line.substr(sp + 1);
    if (std::from_chars(digits.data(), digits.data() + digits.size(), beat).ec != std::errc{}) continue;
    out[std::string(line.substr(0, sp))] = beat;
  }
  return out;
}

std::string format_members(const std::map<std::string, std::uint64_t>& members) {
  std::string out;
  for (const auto& [id, beat] : members) out.append(id).append(" ").append(std::to_string(beat)).append("\n");
  return out;
}

}  // namespace

OrderedGroup::OrderedGroup(std::shared_ptr<TransportState> state, Config config, std::shared_ptr<KvBucket> kv)
    : state_(std::move(state)), config_(std::move(config)), kv_(std::move(kv)) {
  member_ = random_member_id();
  token_ = consumer_name(config_.group, "ordered");
  lease_ = state_->options.partition_lease;
}

Result<std::shared_ptr<OrderedGroup>> OrderedGroup::start(std::shared_ptr<TransportState> state, Config config) {
  if (config.group.empty()) return make_error(errc::validation, "subscribe_ordered: a consumer group name is required");
  if (config.handlers.empty()) return make_error(errc::validation, "subscribe_ordered: no types");
  for (std::size_t i = 0; i < config.handlers.size(); ++i) {
    const auto& h = config.handlers[i];
    if (!h.handler) return make_error(errc::validation, "subscribe_ordered: empty handler for '" + h.type + "'");
    if (auto v = wire::check_subject(h.type, "message type", wire::SubjectPart::token); !v) return std::move(v).error();
    for (std::size_t j = 0; j < i; ++j) {
      if (config.handlers[j].type == h.type) {
        return make_error(errc::validation, "subscribe_ordered: type '" + h.type + "' is given twice");
      }
    }
  }
  config.workers = std::max<std::size_t>(config.workers, 1);
  KvBucketOptions ko;
  ko.bucket = state->events_stream + "_LEASES";
  ko.ttl = state->options.partition_lease;
  ko.storage = state->options.events.storage;
  ko.replicas = state->options.events.replicas;
  ko.timeout = std::min<std::chrono::milliseconds>(state->options.partition_lease / 4, std::chrono::milliseconds(2'000));
  auto kv = KvBucket::open(state->connection, ko);
  if (!kv) return std::move(kv).error();
  std::shared_ptr<OrderedGroup> g(new OrderedGroup(std::move(state), std::move(config), std::move(*kv)));
  // The first round before returning: a lone member owns its partitions at once.
  g->tick();
  g->coordinator_ = std::thread([raw = g.get()] {
    name_this_thread("catga-ordered");
    raw->run();
  });
  log().info("catga.nats member {} joined ordered group '{}' ({} partitions)", g->member_, g->config_.group,
             g->state_->options.partitions);
  return g;
}

OrderedGroup::~OrderedGroup() { stop(state_->options.stop_timeout); }

std::string OrderedGroup::lease_key(std::uint32_t partition) const {
  return token_ + ".p." + std::to_string(partition);
}
std::string OrderedGroup::consumer_prefix(std::uint32_t partition) const {
  return token_ + "_p" + std::to_string(partition) + "_e";
}

void OrderedGroup::run() noexcept {
  while (true) {
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, lease_ / 4, [&] { return stopping_; });
      if (stopping_) return;
    }
    try {
      tick();
    } catch (const std::exception& e) {
      log().error("catga.nats ordered group '{}': {}", config_.group, e.what());
    } catch (...) {
      log().error("catga.nats ordered group '{}': unknown failure", config_.group);
    }
  }
}

std::vector<std::string> OrderedGroup::heartbeat() {
  const std::string key = token_ + ".members";
  const auto now = Clock::now();
  for (int round = 0; round < 5; ++round) {
    auto entry = kv_->get(key);
    if (!entry) return {};
    std::map<std::string, std::uint64_t> members;
    if (*entry) members = parse_members((*entry)->value);
    // Drop members whose heartbeat stood still for a whole lease.
    for (auto it = members.begin(); it != members.end();) {
      if (it->first == member_) {
        ++it;
        continue;
      }
      auto& seen = seen_[it->first];
      if (seen.since == Clock::time_point{} || seen.beat != it->second) {
        seen.beat = it->second;
        seen.since = now;
      }
      if (now - seen.since > lease_) {
        log().info("catga.nats ordered group '{}': member {} stopped beating; dropped", config_.group, it->first);
        it = members.erase(it);
      } else {
        ++it;
      }
    }
    members[member_] = ++beat_;
    const std::string value = format_members(members);
    auto written = *entry ? kv_->update(key, value, (*entry)->revision) : kv_->create(key, value);
    if (written) {
      std::vector<std::string> live;
      for (const auto& m : members) live.push_back(m.first);
      for (auto it = seen_.begin(); it != seen_.end();) it = members.count(it->first) ? std::next(it) : seen_.erase(it);
      return live;
    }
    if (written.error().code != errc::conflict) {
      state_->note_error(written.error());
      return {};
    }
  }
  return {};
}

std::string OrderedGroup::owner_of(std::uint32_t partition, const std::vector<std::string>& members) const {
  const std::string* best = nullptr;
  std::uint64_t best_score = 0;
  for (const auto& m : members) {
    const auto score = mix(m, partition);
    if (best == nullptr || score > best_score) {
      best = &m;
      best_score = score;
    }
  }
  return best != nullptr ? *best : std::string{};
}

void OrderedGroup::tick() {
  const auto members = heartbeat();
  finish_stopped();
  // Partitions whose consumer was deleted under us (taken over) are gone.
  for (auto& [p, o] : owned_) {
    if (!o.stopping && o.lost->load()) begin_stop(p, o, std::chrono::milliseconds(0));
  }
  // The bucket does not answer: the leases run out (lease_until), and the
  // consumers stop starting messages by themselves.
  if (members.empty()) return;
  for (auto& [p, o] : owned_) {
    if (!o.stopping && owner_of(p, members) != member_) begin_stop(p, o, state_->options.stop_timeout);
  }
  renew();
  for (std::uint32_t p = 0; p < state_->options.partitions; ++p) {
    if (owned_.count(p) == 0 && owner_of(p, members) == member_) (void)acquire(p);
  }
}

void OrderedGroup::renew() {
  for (auto& [p, o] : owned_) {
    if (o.lost->load()) continue;
    const auto asked = Clock::now();
    auto renewed = kv_->update(lease_key(p), member_, o.revision);
    if (renewed) {
      o.revision = *renewed;
      o.lease_until->store((asked + lease_).time_since_epoch().count());
    } else if (renewed.error().code == errc::conflict) {
      log().warn("catga.nats ordered group '{}': lease of partition {} was taken over", config_.group, p);
      o.lost->store(true);
      if (!o.stopping) begin_stop(p, o, std::chrono::milliseconds(0));
    } else {
      state_->note_error(renewed.error());
    }
  }
}

void OrderedGroup::begin_stop(std::uint32_t partition, Owned& o, std::chrono::milliseconds timeout) {
  o.stopping = true;
  o.stopped = std::make_shared<std::atomic<bool>>(false);
  {
    std::lock_guard lock(mu_);
    visible_.erase(partition);
  }
  o.stopper = std::thread([consumer = o.consumer, done = o.stopped, timeout] {
    name_this_thread("catga-ordered");
    consumer->stop(timeout);
    done->store(true);
  });
}

void OrderedGroup::finish_stopped() {
  for (auto it = owned_.begin(); it != owned_.end();) {
    auto& o = it->second;
    if (!o.stopping || !o.stopped->load()) {
      ++it;
      continue;
    }
    if (o.stopper.joinable()) o.stopper.join();
    if (!o.lost->load()) (void)kv_->update(lease_key(it->first), std::string(kReleased), o.revision);
    it = owned_.erase(it);
  }
}

bool OrderedGroup::acquire(std::uint32_t partition) {
  const std::string key = lease_key(partition);
  auto entry = kv_->get(key);
  if (!entry) return false;
  Result<std::uint64_t> taken = make_error(errc::conflict, "held");
  const auto asked = Clock::now();
  if (!*entry) {
    taken = kv_->create(key, member_);
  } else if ((*entry)->value == kReleased) {
    taken = kv_->update(key, member_, (*entry)->revision);
  } else {
    return false;  // held by another member until it lets go or its lease runs out
  }
  if (!taken) {
    if (taken.error().code != errc::conflict) state_->note_error(taken.error());
    return false;
  }
  Owned owned;
  owned.revision = *taken;
  owned.lost = std::make_shared<std::atomic<bool>>(false);
  owned.lease_until = std::make_shared<std::atomic<std::int64_t>>((asked + lease_).time_since_epoch().count());
  auto consumer = open_partition(partition, *taken, owned);
  if (!consumer) {
    state_->note_error(consumer.error());
    (void)kv_->update(key, std::string(kReleased), *taken);
    return false;
  }
  owned.consumer = *consumer;
  owned_[partition] = std::move(owned);
  std::lock_guard lock(mu_);
  visible_[partition] = *consumer;
  return true;
}

Result<std::shared_ptr<PullConsumer>> OrderedGroup::open_partition(std::uint32_t partition, std::uint64_t epoch,
                                                                   const Owned& owned) {
  const auto wait = state_->options.publish_timeout;
  jsOptions jo = api_options(wait);
  const std::string prefix = consumer_prefix(partition);
  // The partition's previous consumers (normally one): where it stopped.
  std::vector<std::string> previous;
  {
    ConsumerNamesListHandle list;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus s = js_ConsumerNames(list.out(), state_->js(), state_->events_stream.c_str(), &jo, &jerr);
    if (s != NATS_OK && s != NATS_NOT_FOUND) {
      return to_error(s, jerr, "list consumers of '" + state_->events_stream + "'", Surface::jetstream);
    }
    if (list) {
      for (int i = 0; i < list.get()->Count; ++i) {
        std::string_view name = list.get()->List[i];
        if (name.rfind(prefix, 0) == 0) previous.emplace_back(name);
      }
    }
  }
  auto epoch_of = [&](const std::string& name) {
    std::uint64_t e = 0;
    std::from_chars(name.data() + prefix.size(), name.data() + name.size(), e);
    return e;
  };
  std::sort(previous.begin(), previous.end(),
            [&](const std::string& a, const std::string& b) { return epoch_of(a) < epoch_of(b); });
  std::uint64_t start_sequence = 0;
  if (!previous.empty()) {
    ConsumerInfoHandle info;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus s = js_GetConsumerInfo(info.out(), state_->js(), state_->events_stream.c_str(),
                                            previous.back().c_str(), &jo, &jerr);
    if (s != NATS_OK) {
      return to_error(s, jerr, "consumer info of '" + previous.back() + "'", Surface::jetstream);
    }
    start_sequence = info.get()->AckFloor.Stream + 1;
  }

  PullConsumer::Config cfg;
  for (const auto& h : config_.handlers) cfg.type += (cfg.type.empty() ? "" : ",") + h.type;
  cfg.group = config_.group;
  cfg.consumer = prefix + std::to_string(epoch);
  cfg.identity = token_ + "_p" + std::to_string(partition);
  cfg.subject = wire::partition_filter(state_->options.prefix, partition);
  cfg.retry = config_.retry;
  cfg.workers = config_.workers;
  cfg.options = config_.options;
  cfg.ordered = true;
  cfg.start_sequence = start_sequence;
  cfg.on_lost = [lost = owned.lost] { lost->store(true); };
  cfg.lease_until = owned.lease_until;
  cfg.skip = [this_group = weak_from_this()](std::string_view subject) {
    auto g = this_group.lock();
    return g && g->handler_of(subject) == nullptr;
  };
  auto self = weak_from_this();
  auto pc = PullConsumer::start(state_, std::move(cfg), [self](Delivery& d) -> Status {
    auto g = self.lock();
    if (!g) return make_error(errc::unavailable, "ordered group stopped", true);
    return g->dispatch(d);
  });
  if (!pc) return std::move(pc).error();
  // Fence the previous owner: its consumer goes, and with it its pulls and acks.
  for (const auto& name : previous) {
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus s = js_DeleteConsumer(state_->js(), state_->events_stream.c_str(), name.c_str(), &jo, &jerr);
    if (s != NATS_OK && s != NATS_NOT_FOUND && jerr != JSConsumerNotFoundErr) {
      state_->note_error(to_error(s, jerr, "delete consumer '" + name + "'", Surface::jetstream));
    }
  }
  log().info("catga.nats member {} of ordered group '{}' took partition {} (consumer '{}', from sequence {})", member_,
             config_.group, partition, (*pc)->config().consumer, start_sequence);
  return pc;
}

void OrderedGroup::leave() {
  const std::string key = token_ + ".members";
  for (int round = 0; round < 5; ++round) {
    auto entry = kv_->get(key);
    if (!entry || !*entry) return;
    auto members = parse_members((*entry)->value);
    if (members.erase(member_) == 0) return;
    auto written = kv_->update(key, format_members(members), (*entry)->revision);
    if (written || written.error().code != errc::conflict) return;
  }
}

const TypeHandler* OrderedGroup::handler_of(std::string_view subject) const {
  // <prefix>.evt.<Type>.<p>
  const std::size_t skip = state_->options.prefix.size() + 5;
  std::string_view type = subject.size() > skip ? subject.substr(skip) : std::string_view{};
  type = type.substr(0, type.rfind('.'));
  for (const auto& h : config_.handlers) {
    if (h.type == type) return &h;
  }
  // Another keyed type on this partition that this group does not consume.
  if (skipped_.fetch_add(1, std::memory_order_relaxed) == 0) {
    log().info("catga.nats ordered group '{}' skips keyed events it does not subscribe (first: '{}')", config_.group,
               type);
  }
  return nullptr;
}

Status OrderedGroup::dispatch(Delivery& d) {
  const TypeHandler* h = handler_of(d.subject());
  return h != nullptr ? h->handler(d) : Status{};  // skipped before it gets here
}

void OrderedGroup::stop(std::chrono::milliseconds timeout) noexcept {
  try {
    std::lock_guard stop_lock(stop_mu_);
    if (stopped_) return;
    stopped_ = true;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (coordinator_.joinable()) coordinator_.join();
    for (auto& [p, o] : owned_) {
      if (!o.stopping) begin_stop(p, o, timeout);
    }
    // The leases stay renewed until every consumer has stopped (handlers
    // still running are awaited), then are released.
    auto next_renewal = Clock::now() + lease_ / 4;
    while (!owned_.empty()) {
      finish_stopped();
      if (owned_.empty()) break;
      if (Clock::now() >= next_renewal) {
        renew();
        next_renewal = Clock::now() + lease_ / 4;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    leave();
    log().info("catga.nats member {} left ordered group '{}'", member_, config_.group);
  } catch (...) {
    log().error("catga.nats stopping ordered group '{}' failed", config_.group);
  }
}

std::vector<ConsumerHealth> OrderedGroup::health(std::chrono::milliseconds timeout) const {
  std::vector<std::shared_ptr<PullConsumer>> consumers;
  {
    std::lock_guard lock(mu_);
    for (auto& [p, c] : visible_) consumers.push_back(c);
  }
  std::vector<ConsumerHealth> out;
  for (auto& c : consumers) out.push_back(c->health(timeout));
  return out;
}

}  // namespace catga::nats::detail
