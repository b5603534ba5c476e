#pragma once
// Repository<A>: load (snapshot + tail), decide, save an event-sourced aggregate.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "catga/eventsourcing/aggregate.hpp"
#include "catga/eventsourcing/event_store.hpp"
#include "catga/eventsourcing/snapshot.hpp"
#include "catga/key_value.hpp"

namespace catga::eventsourcing {

// Snapshot settings of a Repository.
struct RepositoryOptions {
  // Save the state every N commits (0: never). Needs a snapshot bucket and
  // an aggregate with a JSON codec (e.g. NLOHMANN_DEFINE_TYPE_INTRUSIVE).
  std::uint64_t snapshot_every = 0;
  // The shape of A's JSON: bump it when A changes, older snapshots are then
  // ignored (full replay) and replaced at the next snapshot.
  int snapshot_schema = 1;
};

// Which state load() returns. A time-travelled state is read-only in effect:
// saving it fails with `conflict` unless it is the current state.
struct LoadOptions {
  std::optional<std::uint64_t> as_of_version{};
  std::optional<std::chrono::system_clock::time_point> as_of_time{};  // by event time; no snapshot used
  bool use_snapshot = true;
};

template <class A>
concept SnapshotCodable = requires(nlohmann::json& j, const A& ca, A& a) {
  j = ca;
  j.get_to(a);
};

// Loads and saves aggregates of type A in an EventStore; optional snapshots
// in a KeyValue bucket (key "<type>.<id>"). A snapshot that does not decode
// (corrupt, older schema) is ignored: the aggregate replays from the start.
// Snapshots are a cache written after a successful save; a failed snapshot
// write is logged and never fails the save. Thread-safe when the store and
// bucket are (ours are).
//
//   Repository<Order> orders(store, snapshots, {.snapshot_every = 100});
//   mediator.handle<CancelOrder>([&](const CancelOrder& c) -> catga::Status {
//     auto r = orders.execute(c.order_id, [&](Order& o) { return o.cancel(c.reason); });
//     if (!r) return std::move(r).error();   // conflict is retryable: RetryBehavior reruns the handler
//     return {};
//   });
template <AggregateRoot A>
class Repository {
 public:
  explicit Repository(std::shared_ptr<EventStore> store, std::shared_ptr<KeyValue> snapshots = {},
                      RepositoryOptions options = {})
      : store_(std::move(store)), snapshots_(std::move(snapshots)), options_(options) {}

  // The aggregate's current state (a fresh A at version 0 when its stream is
  // empty), or as of a version/time.
  Result<A> load(std::string_view id, LoadOptions options = {}) {
    A a;
    a.set_identity(std::string(id));
    const StreamId stream{std::string(A::kType), std::string(id)};
    if (auto v = stream.validate(); !v) return std::move(v).error();
    ReadOptions read{.after_sequence = 0, .to_version = options.as_of_version, .to_time = options.as_of_time};
    if constexpr (SnapshotCodable<A>) {
      if (snapshots_ && options.use_snapshot && !options.as_of_time) {
        if (restore_snapshot(a, stream, options.as_of_version)) {
          read.after_sequence = a.position().sequence;
          read.after_version = a.position().version;
        }
      }
    }
    // The store applies the read rule: a commit claiming a version already
    // held is not returned (see EventStore).
    auto got = store_->read_stream(stream, read);
    if (!got) return std::move(got).error();
    for (const auto& c : got->commits) {
      for (const auto& e : c.events) {
        if (auto s = a.replay(e); !s) return std::move(s).error();
      }
      a.mark_commit(c.position());
    }
    // The next append must expect the subject's last message, even when it
    // is an ignored commit (the server checks that sequence).
    if (got->end.sequence > a.position().sequence) {
      a.restore_position({a.position().version, got->end.sequence}, a.commits());
    }
    // A past state must not be appended to as if it were current: without
    // the sequence, save() checks the version against the stream first.
    if (options.as_of_version || options.as_of_time) a.restore_position({a.position().version, 0}, a.commits());
    return a;
  }

  // Appends a's pending events as one commit expecting a's loaded position;
  // `conflict` (retryable) when the stream moved meanwhile. On success the
  // pending events are cleared and, every snapshot_every commits, a snapshot
  // is written.
  Result<AppendResult> save(A& a, AppendOptions options = {}) {
    if (!a.has_pending()) return AppendResult{a.position(), 0, false};
    const StreamId stream{std::string(A::kType), a.id()};
    auto r = store_->append(stream, a.position(), a.pending(), std::move(options));
    if (!r) return r;
    (void)a.take_pending();
    a.mark_commit(r->position);
    if constexpr (SnapshotCodable<A>) {
      if (snapshots_ && options_.snapshot_every > 0 && a.commits() % options_.snapshot_every == 0) {
        (void)write_snapshot(a, stream);  // a cache: logged, never fails the save
      }
    }
    return r;
  }

  // load → decide(a) → save. `decide` returns catga::Status (or nothing);
  // its error is returned as is and nothing is appended. Deciding nothing
  // (no raise) appends nothing.
  template <class F>
  Result<AppendResult> execute(std::string_view id, F&& decide, AppendOptions options = {}) {
    auto a = load(id);
    if (!a) return std::move(a).error();
    if constexpr (std::is_void_v<std::invoke_result_t<F&, A&>>) {
      decide(*a);
    } else {
      Status d = decide(*a);
      if (!d) return std::move(d).error();
    }
    return save(*a, std::move(options));
  }

  // Writes a snapshot of `a` now (regardless of snapshot_every).
  Status snapshot(const A& a) {
    if constexpr (SnapshotCodable<A>) {
      if (!snapshots_) return make_error(errc::validation, "repository has no snapshot bucket");
      return write_snapshot(a, StreamId{std::string(A::kType), a.id()});
    } else {
      return make_error(errc::validation, "aggregate has no JSON codec for snapshots");
    }
  }

  const std::shared_ptr<EventStore>& store() const noexcept { return store_; }

 private:
  bool restore_snapshot(A& a, const StreamId& stream, std::optional<std::uint64_t> max_version) {
    const std::string key = stream.key();
    auto entry = snapshots_->get(key);
    if (!entry) {
      detail::note_snapshot_problem(key, "not read: " + entry.error().message);
      return false;
    }
    if (!*entry) return false;
    auto snap = decode_snapshot((*entry)->value);
    if (!snap) {
      detail::note_snapshot_problem(key, "does not decode; replaying from the start");
      return false;
    }
    if (snap->header.schema != options_.snapshot_schema) return false;
    if (max_version && snap->header.position.version > *max_version) return false;
    try {
      A restored;
      snap->state.get_to(restored);
      restored.set_identity(a.id());
      restored.restore_position(snap->header.position, snap->header.commits);
      a = std::move(restored);
      return true;
    } catch (const std::exception& e) {
      detail::note_snapshot_problem(key, std::string("state does not decode (") + e.what() + "); replaying from the start");
      return false;
    }
  }

  Status write_snapshot(const A& a, const StreamId& stream) {
    const std::string key = stream.key();
    try {
      nlohmann::json state = a;
      auto r = snapshots_->put(key, encode_snapshot({options_.snapshot_schema, a.position(), a.commits()}, state));
      if (!r) {
        detail::note_snapshot_problem(key, "not written: " + r.error().message);
        return std::move(r).error();
      }
      return {};
    } catch (const std::exception& e) {
      detail::note_snapshot_problem(key, std::string("not encoded: ") + e.what());
      return make_error(errc::internal, e.what());
    }
  }

  std::shared_ptr<EventStore> store_;
  std::shared_ptr<KeyValue> snapshots_;
  RepositoryOptions options_;
};

}  // namespace catga::eventsourcing
