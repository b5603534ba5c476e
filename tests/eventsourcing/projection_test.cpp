// SqliteProjection: read model + checkpoint in one transaction; lag;
// rebuild; a projection process SIGKILLed mid-rebuild and restarted ends
// with the same read model as one built without interruption.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "es_test_support.hpp"
#include "read_model.hpp"
#include "wait_for.hpp"

using namespace catga::eventsourcing;
using namespace std::chrono_literals;

namespace {

std::uint64_t write_history(EventStore& store, int commits, std::mt19937& rng, int accounts = 12) {
  std::vector<Position> at(static_cast<std::size_t>(accounts));
  std::uint64_t last = 0;
  for (int i = 0; i < commits; ++i) {
    const auto a = static_cast<std::size_t>(rng() % static_cast<unsigned>(accounts));
    const StreamId s{"Account", "P-" + std::to_string(a)};
    if (at[a].version == 0) at[a] = store.last(s).value();
    std::vector<EventData> events;
    for (int k = 0, n = 1 + static_cast<int>(rng() % 3); k < n; ++k) {
      if (rng() % 2) {
        events.push_back(EventData::of(est::Deposited{1 + static_cast<std::int64_t>(rng() % 90)}));
      } else {
        events.push_back(EventData::of(est::Withdrawn{1 + static_cast<std::int64_t>(rng() % 40)}));
      }
    }
    auto r = store.append(s, at[a], std::move(events)).value();
    at[a] = r.position;
    last = r.position.sequence;
  }
  return last;
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char t[] = "/tmp/catga-es-XXXXXX";
    path = mkdtemp(t);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& n) const { return (path / n).string(); }
};

bool caught_up(SqliteProjection& p, std::uint64_t last) {
  auto lag = p.lag();
  return p.checkpoint() == last && lag && *lag == 0;
}

pid_t spawn_worker(const std::string& url, const std::string& db, const std::string& name, bool slow, bool rebuild,
                   const std::string& marker) {
  const std::string exe = (std::filesystem::path(std::filesystem::read_symlink("/proc/self/exe")).parent_path() /
                           "es_projection_worker")
                              .string();
  const pid_t pid = fork();
  if (pid == 0) {
    execl(exe.c_str(), exe.c_str(), url.c_str(), db.c_str(), name.c_str(), slow ? "1" : "0", rebuild ? "1" : "0",
          marker.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

void kill_and_reap(pid_t pid) {
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
}

}  // namespace

TEST_CASE("a projection applies every commit once, reports lag, survives restart and rebuilds") {
  catga::test::NatsServer server;
  TempDir dir;
  auto store = est::store_on(est::connect(server));
  std::mt19937 rng(5);
  std::uint64_t last = write_history(*store, 150, rng);

  auto p = SqliteProjection::start(store, {.name = "balances", .database = dir.file("a.db"), .batch = 32},
                                   est::balance_model())
               .value();
  REQUIRE(catga::test::wait_for([&] { return caught_up(*p, last); }, 60s));
  const std::string first = est::dump_model(dir.file("a.db"));
  CHECK(p->applied() == 150);

  // Restart: continues from the checkpoint, applies only what is new.
  p.reset();
  last = write_history(*store, 40, rng);
  p = SqliteProjection::start(store, {.name = "balances", .database = dir.file("a.db"), .batch = 32}, est::balance_model())
          .value();
  REQUIRE(catga::test::wait_for([&] { return caught_up(*p, last); }, 60s));
  CHECK(p->applied() == 40);
  const std::string after_restart = est::dump_model(dir.file("a.db"));
  CHECK(after_restart.size() > first.size());

  // Rebuild: same result from zero.
  REQUIRE(p->rebuild());
  REQUIRE(catga::test::wait_for([&] { return caught_up(*p, last); }, 60s));
  CHECK(est::dump_model(dir.file("a.db")) == after_restart);

  // A second projection from scratch agrees (and shows the log has no duplicates).
  auto q = SqliteProjection::start(store, {.name = "other", .database = dir.file("b.db")}, est::balance_model()).value();
  REQUIRE(catga::test::wait_for([&] { return caught_up(*q, last); }, 60s));
  CHECK(est::dump_model(dir.file("b.db")) == after_restart);
}

TEST_CASE("a projection process killed (SIGKILL) mid-rebuild and restarted equals an uninterrupted build") {
  catga::test::NatsServer server;
  TempDir dir;
  auto store = est::store_on(est::connect(server));
  std::mt19937 rng(11);
  const std::uint64_t last = write_history(*store, 600, rng);
  const std::string db = dir.file("work.db");
  const std::string marker = dir.file("rebuilding");

  // 1. Build it once completely.
  pid_t w = spawn_worker(server.url(), db, "balances", false, false, marker);
  REQUIRE(catga::test::wait_for([&] { return est::stored_checkpoint(db, "balances") == last; }, 60s));
  kill_and_reap(w);

  // 2. Rebuild, slowly, and kill it in the middle.
  w = spawn_worker(server.url(), db, "balances", true, true, marker);
  REQUIRE(catga::test::wait_for([&] { return std::filesystem::exists(marker); }, 60s));
  REQUIRE(catga::test::wait_for([&] { return est::stored_checkpoint(db, "balances") > 0; }, 60s));
  const auto at_kill = est::stored_checkpoint(db, "balances");
  kill_and_reap(w);
  CHECK(at_kill < last);  // really in the middle
  const auto after_kill = est::stored_checkpoint(db, "balances");
  CHECK(after_kill < last);

  // 3. Restart: it continues from its checkpoint.
  w = spawn_worker(server.url(), db, "balances", false, false, marker);
  REQUIRE(catga::test::wait_for([&] { return est::stored_checkpoint(db, "balances") == last; }, 60s));
  kill_and_reap(w);

  // The reference, built without interruption.
  auto ref = SqliteProjection::start(store, {.name = "reference", .database = dir.file("ref.db")}, est::balance_model())
                 .value();
  REQUIRE(catga::test::wait_for([&] { return caught_up(*ref, last); }, 60s));
  const std::string expected = est::dump_model(dir.file("ref.db"));
  CHECK(est::dump_model(db) == expected);
}
