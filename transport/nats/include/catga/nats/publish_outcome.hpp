#pragma once
// What JetStreamTransport::publish_async reports for each message.

#include <cstdint>
#include <functional>
#include <string>

#include "catga/result.hpp"

namespace catga::nats {

// The outcome of one publish_async().
struct PublishOutcome {
  Status status;              // ok: stored by the stream
  std::uint64_t sequence = 0; // stream sequence when stored
  bool duplicate = false;     // the id was already stored (dedup window): not stored twice
  std::string message_id;     // Nats-Msg-Id
};

// Called once per publish_async() with its outcome, on a nats.c thread.
//
//   transport->publish_async(event, [](const catga::nats::PublishOutcome& o) {
//     if (!o.status) spdlog::warn("not stored: {}", o.status.error().message);
//   });
using PublishCallback = std::function<void(const PublishOutcome&)>;

}  // namespace catga::nats
