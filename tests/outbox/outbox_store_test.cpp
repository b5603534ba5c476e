// OutboxStore: durable across reopen, ordered, bounded with a clear error,
// and transactional with the application's own tables.
#include <doctest/doctest.h>
#include <sqlite3.h>

#include <filesystem>

#include "catga/outbox/outbox_store.hpp"
#include "outbox_messages.hpp"

namespace fs = std::filesystem;
using catga::outbox::OutboxStore;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "catga-outbox-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

catga::Status append(OutboxStore& store, int i) {
  const auto& info = catga::message_info<ob::Deposited>();
  auto ctx = catga::Context::root();
  ctx.message_id = *catga::MessageId::parse(ob::deposit_id(i));
  ctx.message_type = info.name;
  const std::string body = nlohmann::json(ob::Deposited{ob::deposit_id(i), i}).dump();
  auto r = store.append(catga::OutboundMessage{info, body, ctx});
  if (!r) return std::move(r).error();
  return {};
}

std::int64_t scalar(sqlite3* db, const char* sql) {
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  const auto v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

}  // namespace

TEST_CASE("stored events survive reopening, in order, with their message id and headers") {
  TempDir dir;
  const std::string path = (dir.path / "outbox.db").string();
  {
    auto store = OutboxStore::open({.path = path}).value();
    for (int i = 0; i < 10; ++i) REQUIRE(append(*store, i));
    CHECK(store->size() == 10);
  }
  auto store = OutboxStore::open({.path = path}).value();
  CHECK(store->size() == 10);
  CHECK(store->bytes() > 0);
  auto records = store->peek(4).value();
  REQUIRE(records.size() == 4);
  for (int i = 0; i < 4; ++i) {
    CHECK(records[static_cast<std::size_t>(i)].message_id == ob::deposit_id(i));
    CHECK(records[static_cast<std::size_t>(i)].type == "Deposited");
    CHECK(records[static_cast<std::size_t>(i)].qos == catga::QoS::exactly_once);
    CHECK(records[static_cast<std::size_t>(i)].body.find(ob::deposit_id(i)) != std::string::npos);
  }
  bool has_id = false, has_timeout = false;
  for (const auto& [k, v] : records[0].headers) {
    has_id |= (k == "Nats-Msg-Id" && v == ob::deposit_id(0));
    has_timeout |= (k == "Catga-Timeout-Ms");
  }
  CHECK(has_id);
  CHECK_FALSE(has_timeout);
  REQUIRE(store->remove({records[0].sequence, records[1].sequence}));
  CHECK(store->size() == 8);
  CHECK(store->peek(1).value().front().message_id == ob::deposit_id(2));
  // WAL mode with full fsync on commit.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))) == "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_CASE("a full outbox refuses more with a clear outbox_full error") {
  TempDir dir;
  auto store = OutboxStore::open({.path = (dir.path / "o.db").string(), .max_messages = 5}).value();
  for (int i = 0; i < 5; ++i) REQUIRE(append(*store, i));
  auto s = append(*store, 5);
  REQUIRE_FALSE(s);
  CHECK(s.error().code == catga::outbox::kOutboxFull);
  CHECK(s.error().retryable);
  CHECK(s.error().message.find("outbox full") != std::string::npos);
  CHECK(store->size() == 5);

  auto small = OutboxStore::open({.path = (dir.path / "b.db").string(), .max_bytes = 400}).value();
  REQUIRE(append(*small, 0));
  catga::Status full;
  for (int i = 1; i < 10 && full; ++i) full = append(*small, i);
  REQUIRE_FALSE(full);
  CHECK(full.error().code == catga::outbox::kOutboxFull);
}

TEST_CASE("the application's state change and its events commit or roll back together") {
  TempDir dir;
  auto store = OutboxStore::open({.path = (dir.path / "o.db").string()}).value();
  REQUIRE(store->transaction([](catga::outbox::OutboxTransaction& tx) {
    return tx.execute("CREATE TABLE account (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);"
                      "INSERT INTO account VALUES (1, 100);");
  }));

  auto ok = store->transaction([](catga::outbox::OutboxTransaction& tx) -> catga::Status {
    if (auto s = tx.execute("UPDATE account SET balance = balance + 5 WHERE id = 1"); !s) return s;
    return tx.enqueue(ob::Deposited{"deposit-a", 5});
  });
  REQUIRE(ok);
  CHECK(store->size() == 1);

  auto failed = store->transaction([](catga::outbox::OutboxTransaction& tx) -> catga::Status {
    if (auto s = tx.execute("UPDATE account SET balance = balance + 7 WHERE id = 1"); !s) return s;
    if (auto s = tx.enqueue(ob::Deposited{"deposit-b", 7}); !s) return s;
    return catga::make_error("insufficient_funds", "rolled back on purpose");
  });
  CHECK_FALSE(failed);
  CHECK(failed.error().code == "insufficient_funds");
  auto thrown = store->transaction([](catga::outbox::OutboxTransaction& tx) -> catga::Status {
    (void)tx.execute("UPDATE account SET balance = 0 WHERE id = 1");
    (void)tx.enqueue(ob::Deposited{"deposit-c", 0});
    throw std::runtime_error("boom");
  });
  CHECK_FALSE(thrown);
  CHECK(thrown.error().message.find("boom") != std::string::npos);

  CHECK(store->size() == 1);
  auto records = store->peek(10).value();
  REQUIRE(records.size() == 1);
  CHECK(records[0].body.find("deposit-a") != std::string::npos);
  catga::Status checked = store->transaction([](catga::outbox::OutboxTransaction& tx) -> catga::Status {
    CHECK(scalar(tx.db(), "SELECT balance FROM account WHERE id = 1") == 105);
    return {};
  });
  CHECK(checked);
}
