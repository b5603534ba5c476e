#include "catga/outbox/outbox_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>

#include "catga/wire.hpp"

namespace catga::outbox {
namespace {

Error sqlite_error(sqlite3* db, int rc, std::string_view what) {
  const char* msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  // Busy/locked/IO failures may pass; a corrupt or unopenable file will not.
  const int primary = rc & 0xff;
  const bool retryable = primary == SQLITE_BUSY || primary == SQLITE_LOCKED || primary == SQLITE_IOERR ||
                         primary == SQLITE_FULL;
  return Error{std::string(errc::unavailable), "outbox: " + std::string(what) + ": " + msg, retryable};
}

// One prepared statement, finalized with the object.
class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  bool ok() const noexcept { return rc_ == SQLITE_OK; }
  int rc() const noexcept { return rc_; }
  sqlite3_stmt* get() const noexcept { return stmt_; }
  void bind_text(int i, std::string_view s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void bind_blob(int i, std::string_view s) {
    sqlite3_bind_blob(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void bind_int(int i, std::int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  std::string column_text(int i) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, i));
    return p == nullptr ? std::string() : std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, i)));
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS catga_outbox (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  type       TEXT NOT NULL,
  qos        INTEGER NOT NULL,
  message_id TEXT NOT NULL,
  headers    TEXT NOT NULL,
  body       BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS catga_outbox_dead (
  seq        INTEGER PRIMARY KEY,
  type       TEXT NOT NULL,
  qos        INTEGER NOT NULL,
  message_id TEXT NOT NULL,
  headers    TEXT NOT NULL,
  body       BLOB NOT NULL,
  error_code TEXT NOT NULL,
  error      TEXT NOT NULL,
  buried_ms  INTEGER NOT NULL
);
)sql";

// The record of a row (seq, type, qos, message_id, headers, body, ...).
OutboxRecord read_record(Statement& st) {
  OutboxRecord r;
  r.sequence = static_cast<std::uint64_t>(sqlite3_column_int64(st.get(), 0));
  r.type = st.column_text(1);
  r.qos = static_cast<QoS>(sqlite3_column_int(st.get(), 2));
  r.message_id = st.column_text(3);
  const auto headers = nlohmann::json::parse(st.column_text(4), nullptr, false);
  if (headers.is_array()) {
    for (const auto& h : headers) {
      if (h.is_array() && h.size() == 2 && h[0].is_string() && h[1].is_string()) {
        r.headers.emplace_back(h[0].get<std::string>(), h[1].get<std::string>());
      }
    }
  }
  r.body = st.column_text(5);
  return r;
}

}  // namespace

struct OutboxStore::Impl {
  OutboxOptions options;
  sqlite3* db = nullptr;
  mutable std::recursive_mutex mu;  // recursive: enqueue runs inside transaction()
  std::atomic<std::size_t> size{0};  // read without the lock (publish checks it)
  std::uint64_t bytes = 0;
  bool in_transaction = false;
  std::size_t tx_added = 0;       // counted on commit
  std::uint64_t tx_added_bytes = 0;
  std::function<void()> notify;

  ~Impl() { sqlite3_close_v2(db); }

  Status exec(std::string_view sql, std::string_view what) {
    char* err = nullptr;
    const std::string text(sql);
    const int rc = sqlite3_exec(db, text.c_str(), nullptr, nullptr, &err);
    if (rc == SQLITE_OK) return {};
    std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    const int primary = rc & 0xff;
    return Error{std::string(errc::unavailable), "outbox: " + std::string(what) + ": " + msg,
                 primary == SQLITE_BUSY || primary == SQLITE_LOCKED};
  }

  // Inserts one record inside the current transaction.
  Status insert(const OutboundMessage& m) {
    if (m.info.qos == QoS::at_most_once) {
      return make_error(errc::validation, "outbox: '" + std::string(m.info.name) + "' is at-most-once; not stored");
    }
    nlohmann::json headers = nlohmann::json::array();
    wire::write_headers(m.context, m.info.name, [&](std::string_view k, std::string_view v) {
      // A relative deadline means nothing when the relay sends it later.
      if (k != wire::kTimeoutMs) headers.push_back({std::string(k), std::string(v)});
    }, /*with_deadline=*/true, m.info.version);
    const std::string header_text = headers.dump();
    const std::uint64_t record_bytes = header_text.size() + m.body.size();
    if (size + tx_added + 1 > options.max_messages || bytes + tx_added_bytes + record_bytes > options.max_bytes) {
      return Error{std::string(kOutboxFull),
                   "outbox full (" + std::to_string(size + tx_added) + " events, " +
                       std::to_string(bytes + tx_added_bytes) + " bytes; limits " +
                       std::to_string(options.max_messages) + " / " + std::to_string(options.max_bytes) +
                       "): the broker has been unreachable too long; '" + std::string(m.info.name) + "' not stored",
                   true};
    }
    Statement st(db, "INSERT INTO catga_outbox (type, qos, message_id, headers, body) VALUES (?, ?, ?, ?, ?)");
    if (!st.ok()) return sqlite_error(db, st.rc(), "prepare insert");
    st.bind_text(1, m.info.name);
    st.bind_int(2, static_cast<int>(m.info.qos));
    st.bind_text(3, m.context.message_id.text().view());
    st.bind_text(4, header_text);
    st.bind_blob(5, m.body);
    if (const int rc = sqlite3_step(st.get()); rc != SQLITE_DONE) return sqlite_error(db, rc, "insert");
    ++tx_added;
    tx_added_bytes += record_bytes;
    return {};
  }

  void committed() {
    size += tx_added;
    bytes += tx_added_bytes;
    tx_added = 0;
    tx_added_bytes = 0;
  }
  void rolled_back() {
    tx_added = 0;
    tx_added_bytes = 0;
  }
};

OutboxStore::OutboxStore(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
OutboxStore::~OutboxStore() = default;

Result<std::shared_ptr<OutboxStore>> OutboxStore::open(OutboxOptions options) {
  if (options.path.empty()) return make_error(errc::validation, "outbox: no database path");
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  const int rc = sqlite3_open_v2(impl->options.path.c_str(), &impl->db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    auto e = sqlite_error(impl->db, rc, "open " + impl->options.path);
    e.retryable = false;
    return e;
  }
  sqlite3_busy_timeout(impl->db, static_cast<int>(impl->options.busy_timeout.count()));
  // WAL + FULL: every commit is fsync'ed before it returns.
  for (std::string_view sql : {std::string_view("PRAGMA journal_mode=WAL;"), std::string_view("PRAGMA synchronous=FULL;"), kSchema}) {
    if (auto s = impl->exec(sql, "set up " + impl->options.path); !s) return std::move(s).error();
  }
  Statement count(impl->db, "SELECT COUNT(*), COALESCE(SUM(LENGTH(headers) + LENGTH(body)), 0) FROM catga_outbox");
  if (!count.ok() || sqlite3_step(count.get()) != SQLITE_ROW) return sqlite_error(impl->db, count.rc(), "count");
  impl->size = static_cast<std::size_t>(sqlite3_column_int64(count.get(), 0));
  impl->bytes = static_cast<std::uint64_t>(sqlite3_column_int64(count.get(), 1));
  return std::shared_ptr<OutboxStore>(new OutboxStore(std::move(impl)));
}

Result<std::uint64_t> OutboxStore::append(const OutboundMessage& message) {
  std::function<void()> notify;
  std::uint64_t seq = 0;
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->in_transaction) {
      if (auto s = impl_->insert(message); !s) return std::move(s).error();
      return static_cast<std::uint64_t>(sqlite3_last_insert_rowid(impl_->db));
    }
    if (auto s = impl_->exec("BEGIN IMMEDIATE;", "begin"); !s) return std::move(s).error();
    if (auto s = impl_->insert(message); !s) {
      (void)impl_->exec("ROLLBACK;", "rollback");
      impl_->rolled_back();
      return std::move(s).error();
    }
    seq = static_cast<std::uint64_t>(sqlite3_last_insert_rowid(impl_->db));
    if (auto s = impl_->exec("COMMIT;", "commit"); !s) {
      (void)impl_->exec("ROLLBACK;", "rollback");
      impl_->rolled_back();
      return std::move(s).error();
    }
    impl_->committed();
    notify = impl_->notify;
  }
  if (notify) notify();
  return seq;
}

Status OutboxStore::transaction(FunctionRef<Status(OutboxTransaction&)> work) {
  std::function<void()> notify;
  bool added = false;
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->in_transaction) return make_error(errc::internal, "outbox: transactions do not nest");
    if (auto s = impl_->exec("BEGIN IMMEDIATE;", "begin"); !s) return s;
    impl_->in_transaction = true;
    Status result;
    try {
      OutboxTransaction tx(*this);
      result = work(tx);
    } catch (const std::exception& e) {
      result = make_error(errc::exception, std::string("outbox transaction: ") + e.what());
    } catch (...) {
      result = make_error(errc::exception, "outbox transaction: unknown exception");
    }
    impl_->in_transaction = false;
    if (result) result = impl_->exec("COMMIT;", "commit");
    if (!result) {
      (void)impl_->exec("ROLLBACK;", "rollback");
      impl_->rolled_back();
      return result;
    }
    added = impl_->tx_added > 0;
    impl_->committed();
    notify = impl_->notify;
  }
  if (added && notify) notify();
  return {};
}

Result<std::vector<OutboxRecord>> OutboxStore::peek(std::size_t max) const {
  std::lock_guard lock(impl_->mu);
  Statement st(impl_->db, "SELECT seq, type, qos, message_id, headers, body FROM catga_outbox ORDER BY seq LIMIT ?");
  if (!st.ok()) return sqlite_error(impl_->db, st.rc(), "prepare peek");
  st.bind_int(1, static_cast<std::int64_t>(max));
  std::vector<OutboxRecord> out;
  int rc = 0;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) out.push_back(read_record(st));
  if (rc != SQLITE_DONE) return sqlite_error(impl_->db, rc, "peek");
  return out;
}

Status OutboxStore::bury(std::uint64_t sequence, const Error& why) {
  std::lock_guard lock(impl_->mu);
  if (auto s = impl_->exec("BEGIN IMMEDIATE;", "begin"); !s) return s;
  auto fail = [&](int rc, std::string_view what) {
    auto e = sqlite_error(impl_->db, rc, what);
    (void)impl_->exec("ROLLBACK;", "rollback");
    return e;
  };
  std::uint64_t bytes = 0;
  {
    Statement size_of(impl_->db, "SELECT LENGTH(headers) + LENGTH(body) FROM catga_outbox WHERE seq = ?");
    if (!size_of.ok()) return fail(size_of.rc(), "prepare bury");
    size_of.bind_int(1, static_cast<std::int64_t>(sequence));
    if (sqlite3_step(size_of.get()) != SQLITE_ROW) {
      (void)impl_->exec("ROLLBACK;", "rollback");
      return {};  // gone already
    }
    bytes = static_cast<std::uint64_t>(sqlite3_column_int64(size_of.get(), 0));
    Statement move(impl_->db,
                   "INSERT OR REPLACE INTO catga_outbox_dead SELECT seq, type, qos, message_id, headers, body, ?, ?, ? "
                   "FROM catga_outbox WHERE seq = ?");
    Statement del(impl_->db, "DELETE FROM catga_outbox WHERE seq = ?");
    if (!move.ok() || !del.ok()) return fail(SQLITE_ERROR, "prepare bury");
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    move.bind_text(1, why.code);
    move.bind_text(2, why.message);
    move.bind_int(3, now_ms);
    move.bind_int(4, static_cast<std::int64_t>(sequence));
    if (const int rc = sqlite3_step(move.get()); rc != SQLITE_DONE) return fail(rc, "bury");
    del.bind_int(1, static_cast<std::int64_t>(sequence));
    if (const int rc = sqlite3_step(del.get()); rc != SQLITE_DONE) return fail(rc, "bury");
  }
  if (auto s = impl_->exec("COMMIT;", "commit"); !s) {
    (void)impl_->exec("ROLLBACK;", "rollback");
    return s;
  }
  impl_->size -= std::min<std::size_t>(impl_->size.load(), 1);
  impl_->bytes -= std::min(impl_->bytes, bytes);
  return {};
}

Result<std::vector<OutboxDeadLetter>> OutboxStore::dead_letters(std::size_t max) const {
  std::lock_guard lock(impl_->mu);
  Statement st(impl_->db,
               "SELECT seq, type, qos, message_id, headers, body, error_code, error, buried_ms FROM catga_outbox_dead "
               "ORDER BY seq LIMIT ?");
  if (!st.ok()) return sqlite_error(impl_->db, st.rc(), "prepare dead letters");
  st.bind_int(1, max == 0 ? -1 : static_cast<std::int64_t>(max));
  std::vector<OutboxDeadLetter> out;
  int rc = 0;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    OutboxDeadLetter d;
    d.record = read_record(st);
    d.error_code = st.column_text(6);
    d.error = st.column_text(7);
    d.buried_ms = sqlite3_column_int64(st.get(), 8);
    out.push_back(std::move(d));
  }
  if (rc != SQLITE_DONE) return sqlite_error(impl_->db, rc, "dead letters");
  return out;
}

Status OutboxStore::remove(const std::vector<std::uint64_t>& sequences) {
  if (sequences.empty()) return {};
  std::lock_guard lock(impl_->mu);
  if (auto s = impl_->exec("BEGIN IMMEDIATE;", "begin"); !s) return s;
  std::uint64_t removed_bytes = 0;
  std::size_t removed = 0;
  {
    Statement size_of(impl_->db, "SELECT LENGTH(headers) + LENGTH(body) FROM catga_outbox WHERE seq = ?");
    Statement del(impl_->db, "DELETE FROM catga_outbox WHERE seq = ?");
    if (!size_of.ok() || !del.ok()) {
      (void)impl_->exec("ROLLBACK;", "rollback");
      return sqlite_error(impl_->db, SQLITE_ERROR, "prepare remove");
    }
    for (auto seq : sequences) {
      sqlite3_reset(size_of.get());
      size_of.bind_int(1, static_cast<std::int64_t>(seq));
      if (sqlite3_step(size_of.get()) != SQLITE_ROW) continue;  // already gone
      removed_bytes += static_cast<std::uint64_t>(sqlite3_column_int64(size_of.get(), 0));
      sqlite3_reset(del.get());
      del.bind_int(1, static_cast<std::int64_t>(seq));
      if (const int rc = sqlite3_step(del.get()); rc != SQLITE_DONE) {
        auto e = sqlite_error(impl_->db, rc, "delete");
        (void)impl_->exec("ROLLBACK;", "rollback");
        return e;
      }
      ++removed;
    }
  }
  if (auto s = impl_->exec("COMMIT;", "commit"); !s) {
    (void)impl_->exec("ROLLBACK;", "rollback");
    return s;
  }
  impl_->size -= std::min(impl_->size.load(), removed);
  impl_->bytes -= std::min(impl_->bytes, removed_bytes);
  return {};
}

std::size_t OutboxStore::size() const noexcept { return impl_->size.load(); }
std::uint64_t OutboxStore::bytes() const noexcept {
  std::lock_guard lock(impl_->mu);
  return impl_->bytes;
}
const OutboxOptions& OutboxStore::options() const noexcept { return impl_->options; }

void OutboxStore::on_append(std::function<void()> notify) {
  std::lock_guard lock(impl_->mu);
  impl_->notify = std::move(notify);
}

Status OutboxTransaction::enqueue(const OutboundMessage& message) {
  std::lock_guard lock(store_.impl_->mu);
  return store_.impl_->insert(message);
}

Status OutboxTransaction::execute(std::string_view sql) {
  std::lock_guard lock(store_.impl_->mu);
  return store_.impl_->exec(sql, "execute");
}

sqlite3* OutboxTransaction::db() const noexcept { return store_.impl_->db; }

}  // namespace catga::outbox
