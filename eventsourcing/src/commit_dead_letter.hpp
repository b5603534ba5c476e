#pragma once
// Commits a feed cannot hand over (undecodable body, failing upcaster) are
// parked in the dead-letter stream instead of being skipped silently.

#include <nats/nats.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "catga/result.hpp"

namespace catga::eventsourcing {
class EventStore;
}

namespace catga::eventsourcing::detail {

// <prefix>.dlq.es.<aggregate type> for a store subject <prefix>.es.<type>.<id>.
std::string commit_dead_letter_subject(std::string_view prefix, std::string_view store_subject);

// Stores a copy of `msg` (a store message delivered to `consumer`) on the
// dead-letter subject with the usual dead-letter headers (docs/wire-format.md)
// plus wire::kEsConsumer; Nats-Msg-Id <stream>:<seq>:<consumer> makes a
// repeated copy a duplicate. Fails when no stream stored it (no dead-letter
// stream: the JetStreamTransport provisions it).
//
//   if (auto s = dead_letter_commit(store, m, "es_proj_orders", seq, 1, error); s) reply(ack, "+TERM");
Status dead_letter_commit(EventStore& store, natsMsg* msg, std::string_view consumer, std::uint64_t stream_seq,
                          std::uint64_t deliveries, const Error& error);

}  // namespace catga::eventsourcing::detail
