#pragma once
// Aggregate<Derived, Events...>: the base of an event-sourced aggregate.

#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "catga/eventsourcing/recorded_event.hpp"
#include "catga/message.hpp"
#include "catga/result.hpp"

namespace catga::eventsourcing {

template <class E, class... Es>
concept OneOf = (std::same_as<E, Es> || ...);

// The state of an aggregate is only ever changed by apply(event): when
// decisions raise() new events and when stored events are replayed, so the
// state after a reload equals the state before. Derived names its type
// (kType, the <type> of the stream id), lists its events (catga events with
// JSON codecs) and has one apply per event; decisions check invariants
// against the state and raise() events, never assign state themselves.
//
//   struct Order : catga::eventsourcing::Aggregate<Order, OrderPlaced, OrderCancelled> {
//     static constexpr std::string_view kType = "Order";
//     std::string status;
//     void apply(const OrderPlaced&) { status = "placed"; }
//     void apply(const OrderCancelled&) { status = "cancelled"; }
//     catga::Status cancel(std::string reason) {
//       if (status != "placed") return catga::make_error("invalid_state", "order is " + status);
//       raise(OrderCancelled{id(), std::move(reason)});
//       return {};
//     }
//   };
template <class Derived, Event... Es>
class Aggregate {
  static_assert(sizeof...(Es) > 0, "catga: an aggregate lists at least one event type");
  static_assert((JsonCodable<Es> && ...), "catga: aggregate events need a JSON codec (declare them with CATGA_EVENT)");

 public:
  Aggregate() = default;

  const std::string& id() const noexcept { return id_; }
  // Version including pending events.
  std::uint64_t version() const noexcept { return position_.version + pending_.size(); }
  // Where the stored stream stood when this state was loaded or last saved.
  Position position() const noexcept { return position_; }
  // Commits applied since the stream began (drives snapshots).
  std::uint64_t commits() const noexcept { return commits_; }
  // Raised but not yet saved.
  const std::vector<EventData>& pending() const noexcept { return pending_; }
  bool has_pending() const noexcept { return !pending_.empty(); }

  // --- used by Repository --------------------------------------------------

  void set_identity(std::string id) { id_ = std::move(id); }
  // Applies one stored event (decoded by its type name). unknown_type when
  // the type is not one of Es, malformed when its data does not decode.
  Status replay(const RecordedEvent& event) {
    Status result = make_error(errc::unknown_type, "aggregate '" + std::string(Derived::kType) +
                                                       "' has no apply() for event '" + event.type + "'");
    (void)((event.type == message_name<Es>() ? (result = replay_as<Es>(event), true) : false) || ...);
    if (result) position_.version = event.version;
    return result;
  }
  // After a commit was replayed or saved.
  void mark_commit(Position at) noexcept {
    position_ = at;
    ++commits_;
  }
  // After restoring a snapshot.
  void restore_position(Position at, std::uint64_t commits) noexcept {
    position_ = at;
    commits_ = commits;
  }
  std::vector<EventData> take_pending() noexcept { return std::exchange(pending_, {}); }

 protected:
  // Applies `event` now and keeps it for the next save.
  template <class E>
    requires OneOf<E, Es...>
  void raise(const E& event) {
    derived().apply(event);
    pending_.push_back(EventData::of(event));
  }

 private:
  Derived& derived() noexcept { return static_cast<Derived&>(*this); }

  template <class E>
  Status replay_as(const RecordedEvent& event) {
    auto e = event.as<E>();
    if (!e) return std::move(e).error();
    derived().apply(*e);
    return {};
  }

  std::string id_;
  Position position_;
  std::uint64_t commits_ = 0;
  std::vector<EventData> pending_;
};

// What Repository<A> needs from A.
template <class A>
concept AggregateRoot = std::default_initializable<A> && requires(A& a, const RecordedEvent& e) {
  { A::kType } -> std::convertible_to<std::string_view>;
  { a.replay(e) } -> std::same_as<Status>;
  { a.take_pending() } -> std::same_as<std::vector<EventData>>;
};

}  // namespace catga::eventsourcing
