#pragma once
// The read model of the projection tests: balances per account plus the
// list of applied commits (to see duplicates, gaps and order).
#include <sqlite3.h>

#include <chrono>
#include <string>
#include <thread>

#include "catga/eventsourcing/projection.hpp"

namespace est {

inline catga::Status exec_sql(sqlite3* db, const std::string& text) {
  char* err = nullptr;
  if (sqlite3_exec(db, text.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err != nullptr ? err : "?";
    sqlite3_free(err);
    return catga::make_error("sqlite", m, true);
  }
  return {};
}

// `slow`: sleeps a little per commit so a test can kill the process midway.
inline catga::eventsourcing::ProjectionHandlers balance_model(bool slow = false) {
  catga::eventsourcing::ProjectionHandlers h;
  h.schema = [](sqlite3* db) {
    return exec_sql(db,
                    "CREATE TABLE IF NOT EXISTS balances (id TEXT PRIMARY KEY, balance INTEGER NOT NULL, events INTEGER NOT NULL);"
                    "CREATE TABLE IF NOT EXISTS applied_log (seq INTEGER NOT NULL)");
  };
  h.apply = [slow](sqlite3* db, const catga::eventsourcing::Commit& c) -> catga::Status {
    if (slow) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::int64_t delta = 0;
    for (const auto& e : c.events) {
      if (e.type == "Deposited") delta += e.data.at("amount").get<std::int64_t>();
      if (e.type == "Withdrawn") delta -= e.data.at("amount").get<std::int64_t>();
    }
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db,
                       "INSERT INTO balances (id, balance, events) VALUES (?1, ?2, ?3) ON CONFLICT(id) DO UPDATE SET "
                       "balance = balance + excluded.balance, events = events + excluded.events",
                       -1, &st, nullptr);
    sqlite3_bind_text(st, 1, c.stream.id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, delta);
    sqlite3_bind_int64(st, 3, static_cast<sqlite3_int64>(c.events.size()));
    const int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return catga::make_error("sqlite", sqlite3_errmsg(db), true);
    return exec_sql(db, "INSERT INTO applied_log (seq) VALUES (" + std::to_string(c.sequence) + ")");
  };
  h.reset = [](sqlite3* db) { return exec_sql(db, "DELETE FROM balances; DELETE FROM applied_log"); };
  return h;
}

// The read model as text (balances, then the applied sequences in order).
inline std::string dump_model(const std::string& path) {
  sqlite3* db = nullptr;
  std::string out;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) return "<cannot open>";
  sqlite3_busy_timeout(db, 5'000);
  auto each = [&](const char* q) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, q, -1, &st, nullptr) != SQLITE_OK) return;
    while (sqlite3_step(st) == SQLITE_ROW) {
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        const auto* t = sqlite3_column_text(st, i);
        out += t != nullptr ? reinterpret_cast<const char*>(t) : "null";
        out += i + 1 < sqlite3_column_count(st) ? "," : "\n";
      }
    }
    sqlite3_finalize(st);
  };
  each("SELECT id, balance, events FROM balances ORDER BY id");
  out += "--\n";
  each("SELECT seq FROM applied_log ORDER BY rowid");
  sqlite3_close(db);
  return out;
}

// The checkpoint stored in `path` for `name` (0 when none or unreadable).
inline std::uint64_t stored_checkpoint(const std::string& path, const std::string& name) {
  sqlite3* db = nullptr;
  std::uint64_t v = 0;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(db, 5'000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT sequence FROM catga_projection_checkpoint WHERE name = ?1", -1, &st, nullptr) ==
        SQLITE_OK) {
      sqlite3_bind_text(st, 1, name.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(st) == SQLITE_ROW) v = static_cast<std::uint64_t>(sqlite3_column_int64(st, 0));
      sqlite3_finalize(st);
    }
  }
  sqlite3_close(db);
  return v;
}

}  // namespace est
