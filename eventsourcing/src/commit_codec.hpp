#pragma once
// Commit ⇄ JSON body of a store message (format: docs/event-sourcing.md).

#include <string>
#include <string_view>
#include <vector>

#include "catga/eventsourcing/recorded_event.hpp"
#include "catga/eventsourcing/upcasters.hpp"
#include "catga/result.hpp"

namespace catga::eventsourcing::detail {

// Header names on store messages besides Nats-Msg-Id.
inline constexpr std::string_view kVersionHeader = "Catga-Es-Version";  // last version in the commit
inline constexpr std::string_view kStreamHeader = "Catga-Es-Stream";    // <type>.<id>
// The stream sequence of the commit this one was appended after (0: the
// first of its stream): what the append expected. Two stored commits naming
// the same one are a double append (the relay checks it).
inline constexpr std::string_view kExpectedHeader = "Catga-Es-Expected-Sequence";

// Nats-Msg-Id of a commit: "<type>.<id>:<last version>:<commit id>".
std::string commit_message_id(const StreamId& stream, std::uint64_t last_version, std::string_view commit_id);

// The body of `commit` (its events' versions and ids already set).
std::string encode_commit(const Commit& commit);

// Parses a body; upcasts each event when `upcasters` is set. `sequence` is
// the message's stream sequence. Errors are `malformed`.
Result<Commit> decode_commit(std::string_view body, std::uint64_t sequence, const Upcasters* upcasters);

// "Order.A-1" → {"Order", "A-1"}.
StreamId parse_stream_key(std::string_view key);

}  // namespace catga::eventsourcing::detail
