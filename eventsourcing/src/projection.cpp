#include "catga/eventsourcing/projection.hpp"

#include <sqlite3.h>

#include <atomic>
#include <mutex>

#include "commit_feed.hpp"
#include "log.hpp"

namespace catga::eventsourcing {

namespace {

Status sql(sqlite3* db, const char* text) {
  char* err = nullptr;
  if (sqlite3_exec(db, text, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err != nullptr ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    return make_error(errc::unavailable, std::string("sqlite: ") + m + " (" + text + ")", true);
  }
  return {};
}

}  // namespace

struct SqliteProjection::Impl {
  std::shared_ptr<EventStore> store;
  ProjectionOptions options;
  ProjectionHandlers handlers;
  sqlite3* db = nullptr;
  sqlite3_stmt* save_checkpoint = nullptr;
  sqlite3_stmt* read_version = nullptr;   // version a stream has reached in the read model
  sqlite3_stmt* save_version = nullptr;
  std::atomic<std::uint64_t> checkpoint{0};
  std::atomic<std::uint64_t> applied{0};
  std::atomic<std::uint64_t> ignored{0};
  std::atomic<std::uint64_t> dead_lettered_before{0};  // by feeds stopped since (rebuild)
  std::atomic<std::uint64_t> repositioned_before{0};
  std::mutex mu;  // start/stop/rebuild
  std::unique_ptr<detail::CommitFeed> feed;

  std::string consumer() const { return "es_proj_" + options.name; }
  detail::CommitFeed::Config feed_config() const {
    detail::CommitFeed::Config c{consumer(), options.filter.empty() ? store->options().all_subjects() : options.filter,
                                 options.batch, options.ack_wait};
    c.inactive_threshold = options.inactive_threshold;
    c.ordered = true;
    return c;
  }

  ~Impl() {
    feed.reset();
    for (auto* st : {save_checkpoint, read_version, save_version}) {
      if (st != nullptr) sqlite3_finalize(st);
    }
    if (db != nullptr) sqlite3_close(db);
  }

  // One transaction: the batch's read-model changes and the checkpoint.
  Status apply_batch(std::vector<detail::Delivered>& batch) {
    if (auto s = sql(db, "BEGIN IMMEDIATE"); !s) return s;
    std::uint64_t last = checkpoint.load();
    std::uint64_t n = 0;
    std::uint64_t skipped = 0;
    for (auto& d : batch) {
      if (d.commit.sequence <= last) continue;  // already applied (redelivery)
      auto s = apply_commit(d.commit, skipped);
      if (!s) {
        (void)sql(db, "ROLLBACK");
        return s;
      }
      last = d.commit.sequence;
      ++n;
    }
    sqlite3_reset(save_checkpoint);
    sqlite3_bind_int64(save_checkpoint, 1, static_cast<sqlite3_int64>(last));
    if (sqlite3_step(save_checkpoint) != SQLITE_DONE) {
      Status s = make_error(errc::unavailable, std::string("sqlite checkpoint: ") + sqlite3_errmsg(db), true);
      (void)sql(db, "ROLLBACK");
      return s;
    }
    if (auto s = sql(db, "COMMIT"); !s) {
      (void)sql(db, "ROLLBACK");
      return s;
    }
    checkpoint = last;
    applied += n - skipped;
    ignored += skipped;
    return {};
  }

  // The read rule of EventStore::read for the read model: a commit claiming
  // a version its stream already reached is a second conditional append let
  // through (docs/event-sourcing.md) and is not applied.
  Status apply_commit(const Commit& c, std::uint64_t& skipped) {
    const std::string key = c.stream.key();
    sqlite3_reset(read_version);
    sqlite3_bind_text(read_version, 2, key.c_str(), -1, SQLITE_TRANSIENT);
    const int rc = sqlite3_step(read_version);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      return make_error(errc::unavailable, std::string("sqlite version: ") + sqlite3_errmsg(db), true);
    }
    if (rc == SQLITE_ROW && c.first_version() <= static_cast<std::uint64_t>(sqlite3_column_int64(read_version, 0))) {
      ++skipped;
      detail::log().warn(
          "catga.es projection '{}': commit {} at #{} claims version {} of '{}' already applied; not applied",
          options.name, c.commit_id, c.sequence, c.first_version(), key);
      return {};
    }
    Status s;
    try {
      s = handlers.apply(db, c);
    } catch (const std::exception& e) {
      s = make_error(errc::exception, e.what());
    }
    if (!s) return s;
    sqlite3_reset(save_version);
    sqlite3_bind_text(save_version, 2, key.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(save_version, 3, static_cast<sqlite3_int64>(c.last_version()));
    if (sqlite3_step(save_version) != SQLITE_DONE) {
      return make_error(errc::unavailable, std::string("sqlite version: ") + sqlite3_errmsg(db), true);
    }
    return {};
  }

  // Stops the feed (the batch being applied finishes), keeping its counters.
  void stop_feed() noexcept {
    if (!feed) return;
    feed->stop();
    auto h = feed->health();
    dead_lettered_before += h.dead_lettered;
    repositioned_before += h.repositioned;
    feed.reset();
  }

  // Positions the consumer right after the checkpoint and starts fetching.
  Status run_from_checkpoint() {
    auto cfg = feed_config();
    if (auto s = detail::CommitFeed::delete_consumer(*store, cfg.consumer); !s) return s;
    if (auto s = detail::CommitFeed::ensure_consumer(*store, cfg, checkpoint.load()); !s) return s;
    auto f = detail::CommitFeed::start(
        store, cfg, [this](std::vector<detail::Delivered>& b) { return apply_batch(b); }, checkpoint.load());
    if (!f) return std::move(f).error();
    feed = std::move(*f);
    return {};
  }
};

SqliteProjection::SqliteProjection(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
SqliteProjection::~SqliteProjection() { stop(); }
const ProjectionOptions& SqliteProjection::options() const noexcept { return impl_->options; }
std::uint64_t SqliteProjection::checkpoint() const noexcept { return impl_->checkpoint.load(); }
std::uint64_t SqliteProjection::applied() const noexcept { return impl_->applied.load(); }

ProjectionHealth SqliteProjection::health() const {
  ProjectionHealth h;
  h.checkpoint = impl_->checkpoint.load();
  h.applied = impl_->applied.load();
  h.ignored = impl_->ignored.load();
  h.dead_lettered = impl_->dead_lettered_before.load();
  h.repositioned = impl_->repositioned_before.load();
  std::lock_guard lock(impl_->mu);
  if (impl_->feed) {
    auto f = impl_->feed->health();
    h.dead_lettered += f.dead_lettered;
    h.repositioned += f.repositioned;
    h.last_error = std::move(f.last_error);
  }
  return h;
}

Result<std::unique_ptr<SqliteProjection>> SqliteProjection::start(std::shared_ptr<EventStore> store,
                                                                   ProjectionOptions options,
                                                                   ProjectionHandlers handlers) {
  if (!store) return make_error(errc::validation, "projection without event store");
  if (options.name.empty() || options.database.empty() || !handlers.apply) {
    return make_error(errc::validation, "projection needs a name, a database and an apply handler");
  }
  for (char c : options.name) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) {
      return make_error(errc::validation, "projection name '" + options.name + "' is not [A-Za-z0-9_-]");
    }
  }
  auto impl = std::make_unique<Impl>();
  impl->store = std::move(store);
  impl->options = std::move(options);
  impl->handlers = std::move(handlers);
  if (sqlite3_open(impl->options.database.c_str(), &impl->db) != SQLITE_OK) {
    return make_error(errc::unavailable, "open '" + impl->options.database + "': " + sqlite3_errmsg(impl->db));
  }
  sqlite3_busy_timeout(impl->db, 5'000);
  for (const char* s : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
                        "CREATE TABLE IF NOT EXISTS catga_projection_checkpoint (name TEXT PRIMARY KEY, sequence INTEGER NOT NULL)",
                        "CREATE TABLE IF NOT EXISTS catga_projection_versions (name TEXT NOT NULL, stream TEXT NOT NULL, "
                        "version INTEGER NOT NULL, PRIMARY KEY (name, stream))"}) {
    if (auto r = sql(impl->db, s); !r) return std::move(r).error();
  }
  if (impl->handlers.schema) {
    if (auto r = impl->handlers.schema(impl->db); !r) return std::move(r).error();
  }
  {
    sqlite3_stmt* q = nullptr;
    sqlite3_prepare_v2(impl->db, "SELECT sequence FROM catga_projection_checkpoint WHERE name = ?1", -1, &q, nullptr);
    sqlite3_bind_text(q, 1, impl->options.name.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(q) == SQLITE_ROW) impl->checkpoint = static_cast<std::uint64_t>(sqlite3_column_int64(q, 0));
    sqlite3_finalize(q);
  }
  if (sqlite3_prepare_v2(impl->db,
                         "INSERT INTO catga_projection_checkpoint (name, sequence) VALUES (?2, ?1) "
                         "ON CONFLICT(name) DO UPDATE SET sequence = excluded.sequence",
                         -1, &impl->save_checkpoint, nullptr) != SQLITE_OK) {
    return make_error(errc::internal, std::string("sqlite prepare: ") + sqlite3_errmsg(impl->db));
  }
  sqlite3_bind_text(impl->save_checkpoint, 2, impl->options.name.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_prepare_v2(impl->db, "SELECT version FROM catga_projection_versions WHERE name = ?1 AND stream = ?2", -1,
                         &impl->read_version, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(impl->db,
                         "INSERT INTO catga_projection_versions (name, stream, version) VALUES (?1, ?2, ?3) "
                         "ON CONFLICT(name, stream) DO UPDATE SET version = excluded.version",
                         -1, &impl->save_version, nullptr) != SQLITE_OK) {
    return make_error(errc::internal, std::string("sqlite prepare: ") + sqlite3_errmsg(impl->db));
  }
  sqlite3_bind_text(impl->read_version, 1, impl->options.name.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(impl->save_version, 1, impl->options.name.c_str(), -1, SQLITE_TRANSIENT);
  if (auto s = impl->run_from_checkpoint(); !s) return std::move(s).error();
  return std::unique_ptr<SqliteProjection>(new SqliteProjection(std::move(impl)));
}

Result<std::uint64_t> SqliteProjection::lag() const {
  auto i = detail::CommitFeed::info(*impl_->store, impl_->consumer());
  if (!i) return std::move(i).error();
  if (!*i) return make_error(errc::unavailable, "projection consumer '" + impl_->consumer() + "' is gone", true);
  return (*i)->pending + (*i)->ack_pending;
}

Status SqliteProjection::rebuild() {
  std::lock_guard lock(impl_->mu);
  impl_->stop_feed();
  if (auto s = sql(impl_->db, "BEGIN IMMEDIATE"); !s) return s;
  Status r;
  if (impl_->handlers.reset) r = impl_->handlers.reset(impl_->db);
  if (r) {
    const std::string forget = "DELETE FROM catga_projection_versions WHERE name = '" + impl_->options.name + "'";
    r = sql(impl_->db, forget.c_str());  // the name is [A-Za-z0-9_-] (checked on start)
  }
  if (r) {
    sqlite3_reset(impl_->save_checkpoint);
    sqlite3_bind_int64(impl_->save_checkpoint, 1, 0);
    if (sqlite3_step(impl_->save_checkpoint) != SQLITE_DONE) {
      r = make_error(errc::unavailable, std::string("sqlite checkpoint: ") + sqlite3_errmsg(impl_->db), true);
    }
  }
  if (r) r = sql(impl_->db, "COMMIT");
  if (!r) {
    (void)sql(impl_->db, "ROLLBACK");
    (void)impl_->run_from_checkpoint();
    return r;
  }
  impl_->checkpoint = 0;
  return impl_->run_from_checkpoint();
}

void SqliteProjection::stop() noexcept {
  std::lock_guard lock(impl_->mu);
  impl_->stop_feed();
}

}  // namespace catga::eventsourcing
