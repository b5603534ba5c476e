#pragma once
// SqliteProjection: keeps a SQLite read model up to date from the event store.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "catga/eventsourcing/event_store.hpp"
#include "catga/result.hpp"

struct sqlite3;

namespace catga::eventsourcing {

// Settings of SqliteProjection.
struct ProjectionOptions {
  // Names the durable consumer ("es_proj_<name>") and the checkpoint row.
  std::string name;
  // SQLite database file (opened in WAL mode).
  std::string database;
  // Which streams: a subject filter, e.g. "catga.es.Order.>"; empty: all.
  std::string filter{};
  // Commits applied per SQLite transaction (at most).
  int batch = 512;
  std::chrono::milliseconds ack_wait{30'000};
  // The server deletes the projection's consumer after this long without a
  // pull (a replica gone for good, e.g. after a rollout), 0: never. Safe to
  // keep short: a projection that finds its consumer gone creates it again
  // right after its checkpoint.
  std::chrono::milliseconds inactive_threshold{std::chrono::minutes(10)};
};

// What a projection has done and met (health reports).
struct ProjectionHealth {
  std::uint64_t checkpoint = 0;     // stream sequence of the last commit applied
  std::uint64_t applied = 0;        // commits applied by this instance
  std::uint64_t ignored = 0;        // commits claiming a version already applied (double appends), not applied
  std::uint64_t dead_lettered = 0;  // commits that could not be read, parked in the dead-letter stream
  std::uint64_t repositioned = 0;   // times the consumer was created again (gap, loss, deleted)
  std::string last_error;           // last failure met (empty: none)
};

// What a projection does with the database. All run on the projection's
// thread inside its transaction; return an Error to roll the batch back
// (it is retried, in order, after a pause).
struct ProjectionHandlers {
  // Creates the read-model tables (CREATE TABLE IF NOT EXISTS ...); on start.
  std::function<Status(sqlite3*)> schema;
  // Applies one commit (its events are upcast already).
  std::function<Status(sqlite3*, const Commit&)> apply;
  // Empties the read model before a rebuild.
  std::function<Status(sqlite3*)> reset;
};

// A read model fed by a durable consumer on the event-store stream. The
// stream sequence of the last applied commit (the checkpoint, table
// catga_projection_checkpoint) is written in the same SQLite transaction as
// the read-model changes of the batch, so a crash at any point leaves the
// two consistent: on start the consumer is (re)positioned right after the
// checkpoint, so nothing is applied twice or skipped. Commits are applied in
// stream order and none is skipped, also when the server's consumer loses a
// delivery (a consumer leader killed mid-delivery) or was left over from an
// earlier run: the feed checks the stream and reads again from the
// checkpoint. A commit that cannot be read (undecodable, failing upcaster)
// is stored in the dead-letter stream (`catga dlq list`), counted in
// health(), and passed. A commit claiming a version of its stream that an
// earlier commit already took (a second conditional append let through, see
// EventStore) is not applied (health().ignored), as when an aggregate loads.
// One process per projection name and database.
//
//   auto orders = SqliteProjection::start(store, {.name = "orders", .database = "orders.db",
//                                                 .filter = "catga.es.Order.>"},
//                                         {.schema = create_tables, .apply = apply_commit, .reset = drop_rows}).value();
//   orders->lag();        // commits not yet applied
//   orders->rebuild();    // empty the read model and replay everything
class SqliteProjection {
 public:
  static Result<std::unique_ptr<SqliteProjection>> start(std::shared_ptr<EventStore> store, ProjectionOptions options,
                                                         ProjectionHandlers handlers);
  ~SqliteProjection();
  SqliteProjection(const SqliteProjection&) = delete;
  SqliteProjection& operator=(const SqliteProjection&) = delete;

  // Stream sequence of the last commit applied.
  std::uint64_t checkpoint() const noexcept;
  // Commits applied by this instance.
  std::uint64_t applied() const noexcept;
  // Counters and the last failure, for readiness/health endpoints.
  ProjectionHealth health() const;
  // Commits in the store (matching the filter) not applied yet, as the
  // server counts them.
  Result<std::uint64_t> lag() const;
  // Stops, empties the read model and the checkpoint in one transaction,
  // restarts from the beginning of the stream. Returns once restarted.
  Status rebuild();
  // Stops consuming (the current batch finishes). Idempotent.
  void stop() noexcept;

  const ProjectionOptions& options() const noexcept;

  struct Impl;

 private:
  explicit SqliteProjection(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace catga::eventsourcing
