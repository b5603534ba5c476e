#pragma once
// The vocabulary of the event store: stream ids, positions, events to append,
// events as stored, commits.

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "catga/message.hpp"
#include "catga/result.hpp"

namespace catga::eventsourcing {

// One aggregate's event stream: subject <prefix>.es.<type>.<id>. Both parts
// are single subject tokens of [A-Za-z0-9_=-] (they also name the snapshot
// key), so "Order" + "A-12345" is fine, "a.b" or "x y" are not.
//
//   StreamId s{"Order", "A-12345"};
//   s.key();   // "Order.A-12345"
struct StreamId {
  std::string type;
  std::string id;

  std::string key() const { return type + "." + id; }
  // `validation` Error naming the offending part.
  Status validate() const;

  friend bool operator==(const StreamId&, const StreamId&) = default;
};

// Where a stream stands: the version of its last event (events are numbered
// 1, 2, ... per stream) and the stream sequence of the commit holding it
// (0 when unknown or when the stream is empty).
//
//   auto at = store->last(stream).value();   // Position{.version = 7, .sequence = 4211}
//   store->append(stream, at, {...});
struct Position {
  std::uint64_t version = 0;
  std::uint64_t sequence = 0;

  friend bool operator==(const Position&, const Position&) = default;
};

// An event to append: its type name, the schema version of `data` (0: the
// current one known to the store's upcasters, 1 when none is registered) and
// its JSON body.
//
//   auto e = EventData::of(OrderPlaced{"A-1", 30.0});   // type "OrderPlaced"
struct EventData {
  std::string type;
  int schema = 0;
  nlohmann::json data;

  template <Event E>
  static EventData of(const E& event) {
    return EventData{std::string(message_name<E>()), 0, nlohmann::json(event)};
  }
};

// An event as stored: what happened (type, data), to which version of the
// stream, when (the appender's clock), by whom, and in which conversation.
// Events read from the store are already upcast to the current schema.
struct RecordedEvent {
  std::string id;              // unique event id (Nats-Msg-Id of its catga copy)
  std::string type;
  int schema = 1;
  std::uint64_t version = 0;
  std::chrono::system_clock::time_point time{};
  std::string actor;
  std::string correlation_id;
  std::string causation_id;
  nlohmann::json data;

  // The data as the catga event E; a `malformed` Error when it does not decode.
  template <Event E>
  Result<E> as() const {
    try {
      return data.get<E>();
    } catch (const std::exception& e) {
      return make_error(errc::malformed, "event '" + type + "' v" + std::to_string(version) +
                                             " does not decode as '" + std::string(message_name<E>()) + "': " + e.what());
    }
  }
};

// One append: the events it stored, atomically, in one stream message.
struct Commit {
  StreamId stream;
  std::string commit_id;
  std::uint64_t sequence = 0;  // stream sequence of the commit message
  std::vector<RecordedEvent> events;

  std::uint64_t first_version() const noexcept { return events.empty() ? 0 : events.front().version; }
  std::uint64_t last_version() const noexcept { return events.empty() ? 0 : events.back().version; }
  Position position() const noexcept { return {last_version(), sequence}; }
};

}  // namespace catga::eventsourcing
