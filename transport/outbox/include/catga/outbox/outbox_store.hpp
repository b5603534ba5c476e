#pragma once
// OutboxStore: a local, durable queue of outgoing events (SQLite, WAL,
// synchronous=FULL), relayed to the broker by OutboxTransport.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "catga/context.hpp"
#include "catga/function_ref.hpp"
#include "catga/message.hpp"
#include "catga/result.hpp"
#include "catga/transport.hpp"

struct sqlite3;  // the application's own statements in a transaction use it

namespace catga::outbox {

// Error code of an append to a full outbox (retryable: it drains once the
// broker is back).
inline constexpr std::string_view kOutboxFull = "outbox_full";

// Where the outbox lives and how big it may grow.
struct OutboxOptions {
  std::string path;                          // SQLite database file (created when missing)
  std::size_t max_messages = 100'000;        // beyond: append fails with outbox_full
  std::uint64_t max_bytes = 256ull << 20;    // bodies + headers; beyond: outbox_full
  std::chrono::milliseconds busy_timeout{5'000};  // another connection holds the write lock
};

// One stored event: what the relay publishes, with its original headers
// (Nats-Msg-Id included, so the broker deduplicates a second relay).
struct OutboxRecord {
  std::uint64_t sequence = 0;  // append order
  std::string type;            // wire name (Catga-Type)
  QoS qos = QoS::at_least_once;
  std::string body;            // JSON
  std::vector<std::pair<std::string, std::string>> headers;  // as written by wire::write_headers
  std::string message_id;      // Nats-Msg-Id
};

// A record the broker refused for good (non-retryable), kept in the outbox
// database's dead-letter table instead of being deleted.
struct OutboxDeadLetter {
  OutboxRecord record;
  std::string error_code;
  std::string error;
  std::int64_t buried_ms = 0;  // Unix time it was moved there
};

// An open SQLite transaction of OutboxStore::transaction: the application's
// own state change and the events it causes commit (fsync) or roll back
// together (the transactional outbox).
//
//   store->transaction([&](catga::outbox::OutboxTransaction& tx) -> catga::Status {
//     if (auto s = tx.execute("UPDATE account SET balance = balance - 5 WHERE id = 7"); !s) return s;
//     return tx.enqueue(Debited{7, 5});
//   });
class OutboxTransaction {
 public:
  // Stores an event (Nats-Msg-Id = context's message id) in this transaction.
  Status enqueue(const OutboundMessage& message);
  template <Event E>
  Status enqueue(const E& event, Context ctx = Context::next()) {
    const auto& info = message_info<E>();
    ctx.message_type = info.name;
    nlohmann::json j = event;
    const std::string body = j.dump();
    return enqueue(OutboundMessage{info, body, ctx});
  }
  // Runs SQL without results (one or more statements).
  Status execute(std::string_view sql);
  // The connection, for prepared statements of the application's own tables.
  sqlite3* db() const noexcept;

 private:
  friend class OutboxStore;
  explicit OutboxTransaction(class OutboxStore& store) noexcept : store_(store) {}
  class OutboxStore& store_;
};

// The durable queue. Every append is committed with fsync before it returns
// (WAL, synchronous=FULL), so a stored event survives a process or machine
// crash. Bounded by OutboxOptions. Thread-safe (one connection, serialised).
//
//   auto store = catga::outbox::OutboxStore::open({.path = "/var/lib/billing/outbox.db"}).value();
//   store->size();   // events waiting for the broker
class OutboxStore {
 public:
  struct Impl;

  static Result<std::shared_ptr<OutboxStore>> open(OutboxOptions options);
  ~OutboxStore();
  OutboxStore(const OutboxStore&) = delete;
  OutboxStore& operator=(const OutboxStore&) = delete;

  // Stores one event in its own transaction; returns its sequence.
  Result<std::uint64_t> append(const OutboundMessage& message);
  // Runs `work` in one IMMEDIATE transaction: committed when it returns ok,
  // rolled back when it fails or throws (the exception becomes an Error).
  Status transaction(FunctionRef<Status(OutboxTransaction&)> work);
  // The oldest `max` records, in append order.
  Result<std::vector<OutboxRecord>> peek(std::size_t max) const;
  // Deletes records by sequence, in one transaction.
  Status remove(const std::vector<std::uint64_t>& sequences);
  // Moves one record to the dead-letter table (catga_outbox_dead) with the
  // reason, in one transaction: it no longer blocks the queue and is never
  // lost. Absent: nothing to do.
  Status bury(std::uint64_t sequence, const Error& why);
  // The oldest `max` dead letters (0: all).
  Result<std::vector<OutboxDeadLetter>> dead_letters(std::size_t max = 0) const;

  std::size_t size() const noexcept;
  std::uint64_t bytes() const noexcept;
  const OutboxOptions& options() const noexcept;
  // Called (on the appending thread, after commit) whenever records were added.
  void on_append(std::function<void()> notify);

 private:
  friend class OutboxTransaction;
  explicit OutboxStore(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace catga::outbox
