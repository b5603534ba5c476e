#include "reply_inboxes.hpp"

#include "handle.hpp"

namespace catga::nats::detail {

ReplyInbox* ReplyInboxes::take(natsConnection* nc) {
  {
    std::lock_guard lock(mu_);
    if (shut_) return nullptr;
    if (!free_.empty()) {
      ReplyInbox* in = free_.back();
      free_.pop_back();
      return in;
    }
  }
  InboxHandle name;
  if (natsInbox_Create(name.out()) != NATS_OK) return nullptr;
  auto in = std::make_unique<ReplyInbox>();
  in->prefix = std::string(name.get()) + ".c.";
  const std::string wildcard = in->prefix + "*";
  if (natsConnection_SubscribeSync(&in->sub, nc, wildcard.c_str()) != NATS_OK) return nullptr;
  // Replies are taken at once by the waiting thread; a late one waits for
  // the next request, which drops it: never a slow consumer.
  natsSubscription_SetPendingLimits(in->sub, -1, -1);
  std::lock_guard lock(mu_);
  if (shut_) natsSubscription_Unsubscribe(in->sub);  // shut while subscribing: destroyed with the rest
  all_.push_back(std::move(in));
  return shut_ ? nullptr : all_.back().get();
}

void ReplyInboxes::give_back(ReplyInbox* inbox) noexcept {
  if (inbox == nullptr) return;
  std::lock_guard lock(mu_);
  if (!shut_) free_.push_back(inbox);
}

void ReplyInboxes::shut() noexcept {
  std::lock_guard lock(mu_);
  shut_ = true;
  for (auto& in : all_) natsSubscription_Unsubscribe(in->sub);
  free_.clear();
}

void ReplyInboxes::clear() noexcept {
  std::lock_guard lock(mu_);
  for (auto& in : all_) natsSubscription_Destroy(in->sub);
  all_.clear();
  free_.clear();
}

}  // namespace catga::nats::detail
