#pragma once
// Creating (or checking) the streams and the durable consumers catga uses.

#include <nats/nats.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "catga/nats/options.hpp"
#include "catga/result.hpp"

namespace catga::nats::detail {

// Creates the stream `name` over `subjects`, or checks that the existing one
// has the same subjects, retention, storage, replicas, limits and duplicate
// window. A difference is an Error naming the field; the stream is never
// updated silently. Safe to call from several processes at once.
Status ensure_stream(jsCtx* js, const std::string& name, const std::vector<std::string>& subjects,
                     const StreamOptions& options, std::chrono::milliseconds wait);

// Both streams of the transport: <prefix>.evt.> and <prefix>.dlq.>.
Status ensure_streams(jsCtx* js, const JetStreamOptions& options, std::chrono::milliseconds wait);

// The durable name of a consumer group for one event type: "<group>_<type>"
// with every character outside [A-Za-z0-9_-] replaced by '_' and, when
// anything was replaced, a hash of the original appended so that different
// groups never share a consumer.
std::string consumer_name(std::string_view group, std::string_view type);

// A durable pull consumer as catga creates it.
struct ConsumerSpec {
  std::string stream;
  std::string name;
  std::string filter_subject;
  std::string description;
  ConsumerOptions options;
  std::uint64_t start_sequence = 0;  // > 0: deliver from this stream sequence (else options.start)
};

// Creates the durable pull consumer (js_AddConsumer: the consumer outlives
// every subscriber) or binds to the existing one after checking it is a pull
// consumer with explicit acks on the same subject. Differences in tunables
// (ack wait, max ack pending) are logged, not changed: the group shares one
// consumer and the first configuration wins.
Status ensure_consumer(jsCtx* js, const ConsumerSpec& spec, std::chrono::milliseconds wait);

}  // namespace catga::nats::detail
