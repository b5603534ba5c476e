// Aggregates through Repository: load → decide → append, conflicts retried by
// the pipeline's RetryBehavior, snapshots (+ corrupt ones), time travel.
#include <doctest/doctest.h>

#include <atomic>
#include <random>
#include <thread>

#include "catga/mediator.hpp"
#include "catga/pipeline/retry.hpp"
#include "es_test_support.hpp"

using namespace catga::eventsourcing;
using est::Account;
using namespace std::chrono_literals;

namespace est {
struct Deposit {
  std::string account;
  std::int64_t amount = 0;
};
CATGA_COMMAND(Deposit, void, account, amount)
}  // namespace est

namespace {

void check_same(const Account& a, const Account& b) {
  CHECK(a.id() == b.id());
  CHECK(a.balance == b.balance);
  CHECK(a.name == b.name);
  CHECK(a.log == b.log);
  CHECK(a.version() == b.version());
  CHECK(a.commits() == b.commits());
  CHECK(a.position().version == b.position().version);
}

// Random history: n commits of 1-3 events each.
void random_history(Repository<Account>& repo, const std::string& id, int commits, std::mt19937& rng) {
  for (int c = 0; c < commits; ++c) {
    auto r = repo.execute(id, [&](Account& a) {
      const int events = 1 + static_cast<int>(rng() % 3);
      for (int i = 0; i < events; ++i) {
        switch (rng() % 3) {
          case 0: (void)a.deposit(1 + static_cast<std::int64_t>(rng() % 100)); break;
          case 1: (void)a.withdraw(static_cast<std::int64_t>(rng() % 50)); break;
          default: a.rename("n" + std::to_string(rng() % 1000)); break;
        }
      }
      if (!a.has_pending()) a.rename("fallback");
    });
    REQUIRE(r);
  }
}

}  // namespace

TEST_CASE("repository: load, decide, save; a failed decision appends nothing") {
  catga::test::NatsServer server;
  auto store = est::store_on(est::connect(server));
  Repository<Account> accounts(store);

  auto fresh = accounts.load("A-1").value();
  CHECK(fresh.version() == 0);
  CHECK(fresh.id() == "A-1");
  REQUIRE(fresh.deposit(100));
  REQUIRE(fresh.withdraw(30));
  CHECK(fresh.version() == 2);
  CHECK(fresh.pending().size() == 2);
  auto saved = accounts.save(fresh, {.actor = "teller"});
  REQUIRE(saved);
  CHECK(saved->position.version == 2);
  CHECK_FALSE(fresh.has_pending());
  CHECK(fresh.position() == saved->position);

  auto failed = accounts.execute("A-1", [](Account& a) { return a.withdraw(1000); });
  REQUIRE_FALSE(failed);
  CHECK(failed.error().code == "insufficient_funds");
  CHECK(store->last({"Account", "A-1"}).value().version == 2);

  auto loaded = accounts.load("A-1").value();
  CHECK(loaded.balance == 70);
  CHECK(loaded.version() == 2);
  CHECK(store->read({"Account", "A-1"}).value().at(0).events.at(1).actor == "teller");

  // Saving a stale copy is a conflict (the stream moved on).
  auto stale = accounts.load("A-1").value();
  REQUIRE(accounts.execute("A-1", [](Account& a) { return a.deposit(1); }));
  REQUIRE(stale.deposit(5));
  auto r = accounts.save(stale);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "conflict");
  CHECK(r.error().retryable);
}

TEST_CASE("a conflicting command is retried by RetryBehavior and then succeeds") {
  catga::test::NatsServer server;
  auto store = est::store_on(est::connect(server));
  Repository<Account> accounts(store);
  REQUIRE(accounts.execute("R-1", [](Account& a) { return a.deposit(10); }));

  catga::Mediator m;
  m.use(std::make_shared<catga::RetryBehavior>(catga::RetryOptions{.max_attempts = 5, .initial_delay = 1ms}));
  std::atomic<int> calls{0};
  m.handle<est::Deposit>([&](const est::Deposit& d, catga::Context& ctx) -> catga::Status {
    ++calls;
    auto a = accounts.load(d.account);
    if (!a) return std::move(a).error();
    if (ctx.attempt == 1) {
      // Another writer gets in between this load and the save.
      auto other = store->append({"Account", d.account}, a->position(), {EventData::of(est::Deposited{1})});
      if (!other) return std::move(other).error();
    }
    if (auto s = a->deposit(d.amount); !s) return s;
    auto saved = accounts.save(*a);
    if (!saved) return std::move(saved).error();
    return {};
  });
  REQUIRE(m.send(est::Deposit{"R-1", 5}));
  CHECK(calls.load() == 2);  // first try lost the race, the retry won
  auto a = accounts.load("R-1").value();
  CHECK(a.balance == 16);
  CHECK(a.version() == 3);

  SUBCASE("two mediators on separate connections hammering one account lose nothing") {
    constexpr int kEach = 40;
    auto worker = [&](int) {
      auto my_store = est::store_on(est::connect(server, "worker"));
      Repository<Account> repo(my_store);
      catga::Mediator mm;
      mm.use(std::make_shared<catga::RetryBehavior>(
          catga::RetryOptions{.max_attempts = 200, .initial_delay = 1ms, .max_delay = 20ms}));
      mm.handle<est::Deposit>([&](const est::Deposit& d) -> catga::Status {
        auto r = repo.execute(d.account, [&](Account& acc) { return acc.deposit(d.amount); });
        if (!r) return std::move(r).error();
        return {};
      });
      int ok = 0;
      for (int i = 0; i < kEach; ++i) ok += mm.send(est::Deposit{"R-1", 1}) ? 1 : 0;
      return ok;
    };
    std::atomic<int> ok{0};
    std::thread t1([&] { ok += worker(1); });
    std::thread t2([&] { ok += worker(2); });
    t1.join();
    t2.join();
    CHECK(ok.load() == 2 * kEach);
    auto after = accounts.load("R-1").value();
    CHECK(after.balance == 16 + 2 * kEach);
    CHECK(after.version() == 3 + 2 * kEach);
  }
}

TEST_CASE("snapshot + tail equals full replay for random histories") {
  catga::test::NatsServer server;
  auto conn = est::connect(server);
  auto store = est::store_on(conn);
  auto bucket = est::snapshot_bucket(conn);
  Repository<Account> accounts(store, bucket, {.snapshot_every = 7});
  std::mt19937 rng(20261122);
  for (int n = 0; n < 6; ++n) {
    const std::string id = "H-" + std::to_string(n);
    const int commits = 1 + static_cast<int>(rng() % 40);
    random_history(accounts, id, commits, rng);
    auto with = accounts.load(id).value();
    auto without = accounts.load(id, {.use_snapshot = false}).value();
    check_same(with, without);
    CHECK(with.commits() == static_cast<std::uint64_t>(commits));
    auto snap = bucket->get("Account." + id).value();
    CHECK(snap.has_value() == (commits >= 7));
    if (snap) {
      auto d = decode_snapshot(snap->value);
      REQUIRE(d);
      CHECK(d->header.commits == static_cast<std::uint64_t>(commits - commits % 7));
    }
    // Keep deciding on the snapshot-loaded state: still equal afterwards.
    random_history(accounts, id, 3, rng);
    check_same(accounts.load(id).value(), accounts.load(id, {.use_snapshot = false}).value());
  }
}

TEST_CASE("a corrupt or outdated snapshot is ignored: full replay") {
  catga::test::NatsServer server;
  auto conn = est::connect(server);
  auto store = est::store_on(conn);
  auto bucket = est::snapshot_bucket(conn);
  Repository<Account> accounts(store, bucket, {.snapshot_every = 2});
  std::mt19937 rng(7);
  random_history(accounts, "C-1", 9, rng);
  const auto truth = accounts.load("C-1", {.use_snapshot = false}).value();
  REQUIRE(bucket->get("Account.C-1").value().has_value());

  SUBCASE("not JSON") { REQUIRE(bucket->put("Account.C-1", "\x01garbage")); }
  SUBCASE("state of the wrong shape") {
    REQUIRE(bucket->put("Account.C-1", encode_snapshot({1, truth.position(), truth.commits()}, {{"balance", "lots"}})));
  }
  SUBCASE("a lying state is not used when its schema is outdated") {
    REQUIRE(bucket->put("Account.C-1", encode_snapshot({0, truth.position(), truth.commits()},
                                                       {{"balance", 999999}, {"name", "x"}, {"log", nlohmann::json::array()}})));
  }
  auto loaded = accounts.load("C-1").value();
  check_same(loaded, truth);
  // The next snapshot replaces the bad one.
  REQUIRE(accounts.execute("C-1", [](Account& a) { a.rename("after"); }));
  REQUIRE(accounts.execute("C-1", [](Account& a) { a.rename("after2"); }));
  auto fixed = decode_snapshot(bucket->get("Account.C-1").value()->value);
  REQUIRE(fixed);
  CHECK(fixed->header.schema == 1);
  check_same(accounts.load("C-1").value(), accounts.load("C-1", {.use_snapshot = false}).value());
}

TEST_CASE("time travel: the state at version k equals the replay of the first k events") {
  catga::test::NatsServer server;
  auto conn = est::connect(server);
  auto store = est::store_on(conn);
  Repository<Account> accounts(store, est::snapshot_bucket(conn), {.snapshot_every = 3});
  std::mt19937 rng(99);
  random_history(accounts, "T-1", 15, rng);
  std::vector<RecordedEvent> all;
  const auto commits = store->read({"Account", "T-1"}).value();
  for (const auto& c : commits) {
    for (auto& e : c.events) all.push_back(e);
  }
  const auto total = all.size();
  for (std::uint64_t k : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{total / 3}, std::uint64_t{total / 2},
                          std::uint64_t{total - 1}, std::uint64_t{total}}) {
    Account expected;
    expected.set_identity("T-1");
    for (std::uint64_t i = 0; i < k; ++i) REQUIRE(expected.replay(all[i]));
    auto at = accounts.load("T-1", {.as_of_version = k}).value();
    CHECK(at.version() == k);
    CHECK(at.balance == expected.balance);
    CHECK(at.log == expected.log);
    CHECK(at.name == expected.name);
  }
  // By time: everything up to the last event's time is the current state.
  auto now = accounts.load("T-1", {.as_of_time = all.back().time}).value();
  CHECK(now.log == accounts.load("T-1").value().log);
  CHECK(accounts.load("T-1", {.as_of_time = all.front().time - 1ms}).value().version() == 0);

  // A past state cannot be saved over the present.
  auto past = accounts.load("T-1", {.as_of_version = total / 2}).value();
  past.rename("rewrite history");
  auto r = accounts.save(past);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "conflict");
}
