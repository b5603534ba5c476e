#pragma once
// ReplyInboxes: the pool of reply subscriptions behind native::Request, one
// per Connection (in Connection::Impl).

#include <nats/nats.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace catga::nats::detail {

// One reply subscription (<inbox>.c.*, synchronous), used by one request at
// a time; each try gets the reply subject <inbox>.c.<next>.
struct ReplyInbox {
  std::string prefix;  // "<inbox>.c."
  natsSubscription* sub = nullptr;
  std::uint64_t next = 0;
};

// Inboxes are made on demand (one per request in flight at the same time)
// and kept until the connection closes (shut()) and is destroyed: ~Impl destroys them after the
// connection closed, as nats.c before 3.10 may still deliver to a destroyed
// subscription (nats.c issue 637). Thread-safe.
//
//   ReplyInbox* in = impl.replies.take(nc);   // nullptr: could not subscribe
//   ...; impl.replies.give_back(in);
class ReplyInboxes {
 public:
  ReplyInboxes() = default;
  ReplyInboxes(const ReplyInboxes&) = delete;
  ReplyInboxes& operator=(const ReplyInboxes&) = delete;
  ~ReplyInboxes() { clear(); }

  ReplyInbox* take(natsConnection* nc);
  void give_back(ReplyInbox* inbox) noexcept;
  // The connection is about to drain: every subscription is unsubscribed
  // (a drain waits for a synchronous subscription until someone reads it)
  // and none is given out again (take() returns nullptr).
  void shut() noexcept;
  // Destroys every subscription (the connection has closed).
  void clear() noexcept;

 private:
  std::mutex mu_;
  bool shut_ = false;
  std::vector<std::unique_ptr<ReplyInbox>> all_;
  std::vector<ReplyInbox*> free_;
};

}  // namespace catga::nats::detail
