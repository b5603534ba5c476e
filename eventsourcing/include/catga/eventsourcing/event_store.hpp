#pragma once
// EventStore: append-only event streams on a JetStream stream, with
// optimistic concurrency enforced by the server.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "catga/context.hpp"
#include "catga/eventsourcing/recorded_event.hpp"
#include "catga/eventsourcing/upcasters.hpp"
#include "catga/nats/connection.hpp"
#include "catga/nats/options.hpp"
#include "catga/result.hpp"

namespace catga::eventsourcing {

// Settings of EventStore.
struct EventStoreOptions {
  // Subjects <prefix>.es.<type>.<id>.
  std::string prefix = "catga";
  // The stream (storage, replicas, limits, dedup window). Empty name: "CATGA_ES"
  // (upper-cased prefix + "_ES"). Keep max_age/max_msgs unlimited: the
  // stream is the source of truth.
  nats::StreamOptions stream{};
  // Create the stream (or check the existing one matches) on create().
  bool provision = true;
  // Deadline of one operation (append with its internal retries, a read).
  std::chrono::milliseconds timeout{5'000};
  // How long one request to the server (a try of an append, of a read's
  // consumer creation, of a last-commit lookup) waits before it is sent again,
  // never past `timeout`. A request that reached a stream leader which then
  // crashed is never answered; without this cap its first try would use up
  // the whole deadline. Sending again is safe: an append already stored is
  // recognised (dedup, or its commit id after the expected position).
  std::chrono::milliseconds attempt_timeout{2'000};
  // Applied to every event read.
  std::shared_ptr<const Upcasters> upcasters{};
  // When an append is confirmed on the stream leader after the server
  // stored it (docs/event-sourcing.md, "Double appends on R3"). On a
  // single-replica stream the server checks the expected position and
  // stores the commit in one step, so no second commit can claim the same
  // version: `when_replicated` confirms only on a stream with more than one
  // replica (read from the server when the store is created). `always` also
  // confirms on one replica: for a stream that will be scaled up while this
  // store is open (otherwise reopen the store after scaling).
  enum class Confirm { when_replicated, always };
  Confirm confirm_appends = Confirm::when_replicated;

  std::string stream_name() const;
  std::string subject(const StreamId& stream) const;  // <prefix>.es.<type>.<id>
  std::string all_subjects() const;                   // <prefix>.es.>
};

// Metadata of an append. Unset ids come from the current handler's context
// (Context::current(): correlation id, causation = the handler's message id);
// an empty commit id gets a fresh random one.
//
//   store->append(s, at, events, {.actor = "alice"});
struct AppendOptions {
  std::string actor{};
  std::string correlation_id{};
  std::string causation_id{};
  // Identifies this append across its own retries (part of Nats-Msg-Id).
  std::string commit_id{};
};

// What append() did.
struct AppendResult {
  Position position;           // the stream's new position (last event, commit sequence)
  std::uint64_t first_version = 0;
  bool already_stored = false;  // an earlier try of this same commit had been stored
};

// Which part of a stream read() returns.
struct ReadOptions {
  // Only commits stored after this stream sequence (snapshot + tail).
  std::uint64_t after_sequence = 0;
  // The stream's version at after_sequence (a snapshot's version): the read
  // rule then also ignores a first tail commit claiming a version at or
  // below it. Unset: the first commit after after_sequence is taken as is.
  std::optional<std::uint64_t> after_version{};
  // Time travel: stop before the first event with a higher version / a later
  // time (a commit is cut there, so a state "as of version k" is exact).
  std::optional<std::uint64_t> to_version{};
  std::optional<std::chrono::system_clock::time_point> to_time{};
};

// What read_stream() returns: the commits the read rule keeps, and where to
// append next.
struct StreamRead {
  std::vector<Commit> commits;
  // Version of the last event kept; sequence of the last message read on the
  // subject, ignored commits included (the server checks an append against
  // that one). Position{} for an empty stream.
  Position end;
  // Commits read but ignored because they claim a version already held.
  std::uint64_t ignored = 0;
};

// Event streams of aggregates on one JetStream stream (default CATGA_ES,
// subjects catga.es.<type>.<id>).
//
// append(stream, expected, events) writes ONE message carrying all the
// events (atomic: they are stored together or not at all), published with
// Nats-Expected-Last-Subject-Sequence = expected.sequence (0 for a new
// stream), so the server stores it only if nothing was appended since the
// caller read the stream: of two concurrent writers exactly one wins, the
// other gets a retryable `conflict` Error (reload, decide again). The message
// carries Nats-Msg-Id = "<type>.<id>:<version>:<commit id>": a retry after a
// lost ack is deduplicated by the server, or (an R3 cluster answers such a
// retry with "wrong last sequence") recognised by finding its commit id
// among the commits after the expected position (other writers may have
// appended behind it); it is then reported as success with
// already_stored = true. The commit id keeps two writers that expect the same
// version from sharing a message id (dedup would otherwise tell the loser it
// had won).
//
// The read rule. nats-server 2.9 on a replicated (R3) stream does not
// serialize the expected-sequence check (nats-server issue 4320): two
// conditional appends at the same position can both be stored. Every read
// (read, read_stream, last, last_commit, loads) therefore keeps a commit only
// if it starts after the last version kept so far: of two commits claiming
// the same version the first by stream sequence holds it, a later one is
// ignored (logged, counted in ignored_commits()). The writer of that later
// commit learns it: after the server accepted an append, append checks on
// the stream leader that nothing stored between the expected position and
// its commit claims its versions (one message get in the common case, a
// full read otherwise) and, if something does, returns a retryable
// `conflict` (its commit stays in the stream, ignored by readers).
//
// Reading creates a short-lived ordered pull consumer filtered on the
// stream's subject and fetches the commits in one pull. Thread-safe.
//
//   auto conn = catga::nats::Connection::connect(opts).value();
//   auto store = catga::eventsourcing::EventStore::create(conn).value();
//   StreamId order{"Order", "A-1"};
//   auto r = store->append(order, Position{}, {EventData::of(OrderPlaced{"A-1", 30.0})});
//   for (auto& c : store->read(order).value()) ...
class EventStore {
 public:
  static Result<std::shared_ptr<EventStore>> create(std::shared_ptr<nats::Connection> connection,
                                                    EventStoreOptions options = {});
  ~EventStore();
  EventStore(const EventStore&) = delete;
  EventStore& operator=(const EventStore&) = delete;

  // Appends `events` (at least one) if the stream is still at `expected`
  // (Position{} = the stream must be empty). A position with version > 0 but
  // sequence 0 is resolved by reading the last commit first (still safe: the
  // server checks the sequence that read returned).
  Result<AppendResult> append(const StreamId& stream, Position expected, std::vector<EventData> events,
                              AppendOptions options = {});
  // The same, expecting `expected_version` (resolved as above).
  Result<AppendResult> append(const StreamId& stream, std::uint64_t expected_version, std::vector<EventData> events,
                              AppendOptions options = {}) {
    return append(stream, Position{expected_version, 0}, std::move(events), std::move(options));
  }

  // The commits of `stream` in order (empty for an unknown stream). On a
  // replicated stream the end is checked against the leader's last message
  // (one more round trip), since a consumer may count from a lagging replica.
  Result<std::vector<Commit>> read(const StreamId& stream, ReadOptions options = {});
  // The same, with the position to append at and how many commits the read
  // rule ignored.
  Result<StreamRead> read_stream(const StreamId& stream, ReadOptions options = {});
  // The last commit of `stream` the read rule keeps, if any (reads the
  // stream: the rule needs its history).
  Result<std::optional<Commit>> last_commit(const StreamId& stream);
  // The position to append at (read_stream().end; Position{} for an empty
  // stream). Its version is the last kept event's, its sequence the last
  // message's on the subject, which may be an ignored commit.
  Result<Position> last(const StreamId& stream);

  // Commits this store has ignored on read because an earlier commit holds
  // their version (see "the read rule" above); 0 on a healthy stream.
  std::uint64_t ignored_commits() const noexcept;

  const EventStoreOptions& options() const noexcept;
  const std::shared_ptr<nats::Connection>& connection() const noexcept;

  struct Impl;  // nats.c side, private to catga::eventsourcing
  Impl& impl() const noexcept { return *impl_; }

 private:
  explicit EventStore(std::unique_ptr<Impl> impl) noexcept;
  struct ReadState;
  Result<StreamRead> read_impl(const StreamId& stream, const ReadOptions& options,
                               std::chrono::steady_clock::time_point deadline, std::vector<Commit>* ignored);
  Status read_once(const StreamId& stream, const ReadOptions& options, std::chrono::steady_clock::time_point deadline,
                   ReadState& state);
  Result<std::uint64_t> last_sequence(const StreamId& stream, std::chrono::steady_clock::time_point deadline);
  Result<std::optional<Commit>> leader_get(const StreamId& stream, std::uint64_t sequence, bool next_on_subject,
                                           std::chrono::steady_clock::time_point deadline);
  Status confirm(const StreamId& stream, Position expected, std::uint64_t first_version, std::uint64_t sequence,
                 std::chrono::steady_clock::time_point deadline);
  std::unique_ptr<Impl> impl_;
};

}  // namespace catga::eventsourcing
