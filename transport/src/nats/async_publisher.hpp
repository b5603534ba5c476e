#pragma once
// AsyncPublisher: JetStream publishes with a bounded window of acks in flight.

#include <nats/nats.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "catga/nats/jetstream_transport.hpp"
#include "handle.hpp"
#include "transport_state.hpp"

namespace catga::nats::detail {

// Owns a jsCtx of its own (its ack handler and MaxPending are per context).
// Every message handed to js_PublishMsgAsync is registered first under its
// natsMsg pointer, so the ack handler — which may run before
// js_PublishMsgAsync returns — finds its callback; the handler then owns and
// destroys the message (nats.c hands it back with the ack). A MaxWait on each
// publish turns a lost ack into a timeout outcome.
class AsyncPublisher {
 public:
  static Result<std::unique_ptr<AsyncPublisher>> create(std::shared_ptr<TransportState> state);
  ~AsyncPublisher();

  Status publish(const OutboundMessage& message, JetStreamTransport::PublishCallback done);
  // Waits for every outcome so far.
  Status flush(std::chrono::milliseconds timeout);
  // flush(timeout), then fails what is still pending (done gets an
  // `unavailable` outcome) and refuses new publishes.
  void close(std::chrono::milliseconds timeout) noexcept;

 private:
  explicit AsyncPublisher(std::shared_ptr<TransportState> state)
      : state_(std::move(state)), window_(std::max<std::size_t>(state_->options.max_async_pending, 1)) {}
  // A publisher blocked on a full window resumes once this many are left.
  std::size_t low_water() const noexcept { return window_ / 2; }
  static void on_ack(jsCtx* js, natsMsg* msg, jsPubAck* ack, jsPubAckErr* err, void* closure) noexcept;
  void complete(natsMsg* msg, PublishOutcome outcome) noexcept;

  struct Pending {
    JetStreamTransport::PublishCallback done;
    std::string message_id;
  };

  std::shared_ptr<TransportState> state_;
  JsHandle js_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<natsMsg*, Pending> pending_;
  std::size_t window_;
  std::size_t reserved_ = 0;  // window slots taken (pending_ + being sent)
  std::size_t blocked_ = 0;   // publishers waiting for room
  std::size_t flushing_ = 0;  // flush() callers waiting
  bool closed_ = false;
};

}  // namespace catga::nats::detail
