// `eventstore` benchmark: EventStore append against plain js_Publish of the
// same payload in the same run and server; aggregate loading with and
// without snapshots; SQLite projection throughput. Prints one JSON line:
//   {"bench":"eventstore","raw_sync_publish_per_s":..,"append_per_s":..,"append_ratio":..,
//    "load_1000_events_ms":..,"load_1000_with_snapshots_ms":..,"projection_events_per_s":..}
#include <nats/nats.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <catga/eventsourcing/eventsourcing.hpp>
#include <catga/nats/key_value.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "nats_server.hpp"

namespace bench_es {
struct Deposited {
  std::int64_t amount = 0;
  std::string note;
};
CATGA_EVENT(Deposited, amount, note)

struct Account : catga::eventsourcing::Aggregate<Account, Deposited> {
  static constexpr std::string_view kType = "Account";
  std::int64_t balance = 0;
  std::int64_t deposits = 0;
  void apply(const Deposited& e) {
    balance += e.amount;
    ++deposits;
  }
  void deposit(std::int64_t amount) { raise(Deposited{amount, "benchmark deposit"}); }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Account, balance, deposits)
};
}  // namespace bench_es

using namespace catga::eventsourcing;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::vector<EventData> one_event(int i) {
  return {EventData::of(bench_es::Deposited{i, "benchmark deposit"})};
}

// Best of `rounds` loads, in ms.
template <class F>
double best_ms(F&& f, int rounds) {
  double best = 1e300;
  for (int r = 0; r < rounds; ++r) {
    const auto t0 = Clock::now();
    f();
    best = std::min(best, seconds_since(t0) * 1e3);
  }
  return best;
}

}  // namespace

int main() {
  spdlog::set_level(spdlog::level::warn);
  catga::test::NatsServer server;  // file storage in a temp dir
  catga::nats::NatsOptions o;
  o.servers = {server.url()};
  auto conn = catga::nats::Connection::connect(o).value();
  conn->wait_connected(std::chrono::seconds(30)).value();
  auto store = EventStore::create(conn).value();
  constexpr int kAppends = 3000;

  // The payload append sends: one commit body of one event, as stored.
  const StreamId probe{"Account", "probe"};
  store->append(probe, Position{}, one_event(1)).value();
  std::string payload;
  {
    natsConnection* nc = nullptr;
    natsConnection_ConnectTo(&nc, server.url().c_str());
    jsCtx* js = nullptr;
    natsConnection_JetStream(&js, nc, nullptr);
    natsMsg* m = nullptr;
    js_GetLastMsg(&m, js, "CATGA_ES", "catga.es.Account.probe", nullptr, nullptr);
    payload.assign(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
    natsMsg_Destroy(m);

    // raw: synchronous js_Publish of the same payload, one subject.
    for (int i = 0; i < 200; ++i) js_Publish(nullptr, js, "catga.es.Raw.warm", payload.data(), static_cast<int>(payload.size()), nullptr, nullptr);
    const auto t0 = Clock::now();
    for (int i = 0; i < kAppends; ++i) {
      js_Publish(nullptr, js, "catga.es.Raw.r", payload.data(), static_cast<int>(payload.size()), nullptr, nullptr);
    }
    const double raw = kAppends / seconds_since(t0);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);

    // append: one event per commit, each expecting the previous position.
    const StreamId acc{"Account", "bench"};
    Position at{};
    for (int i = 0; i < 200; ++i) at = store->append({"Account", "warm"}, at, one_event(i)).value().position;
    at = {};
    const auto t1 = Clock::now();
    for (int i = 0; i < kAppends; ++i) at = store->append(acc, at, one_event(i)).value().position;
    const double append = kAppends / seconds_since(t1);

    // load: 1,000 events (one per commit), with and without snapshots.
    const StreamId big{"Account", "load"};
    at = {};
    for (int i = 0; i < 1000; ++i) at = store->append(big, at, one_event(i)).value().position;
    Repository<bench_es::Account> plain(store);
    const double load_ms = best_ms([&] { plain.load("load").value(); }, 15);
    auto snaps = catga::nats::KvBucket::open(conn, {.bucket = "bench_snapshots"}).value();
    Repository<bench_es::Account> snapped(store, snaps, {.snapshot_every = 100});
    // Snapshot every 100 commits: write the history's snapshots as save() would
    // (the last at commit 1000), then add 50 commits of tail.
    auto a = snapped.load("load").value();
    snapped.snapshot(a).value();
    for (int i = 0; i < 50; ++i) snapped.execute("load", [](bench_es::Account& x) { x.deposit(1); }).value();
    const double snap_ms = best_ms([&] { snapped.load("load").value(); }, 15);
    if (snapped.load("load").value().deposits != 1050 || plain.load("load").value().deposits != 1050) {
      std::fprintf(stderr, "bench_eventstore: loads disagree\n");
      return 1;
    }

    // projection: 20,000 events (10,000 commits of 2) into SQLite.
    for (int c = 0; c < 10'000; ++c) {
      std::vector<EventData> two = one_event(c);
      two.push_back(two.front());
      store->append({"Ledger", "L-" + std::to_string(c % 100)}, std::uint64_t(2 * (c / 100)), std::move(two)).value();
    }
    const auto dir = std::filesystem::temp_directory_path() / ("catga-bench-es-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::uint64_t events = 0;
    const auto last = store->last({"Ledger", "L-99"}).value().sequence;
    ProjectionHandlers h;
    h.schema = [](sqlite3* db) {
      sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS ledger (id TEXT PRIMARY KEY, total INTEGER, n INTEGER)", nullptr, nullptr, nullptr);
      return catga::Status{};
    };
    h.apply = [&](sqlite3* db, const Commit& c) -> catga::Status {
      static thread_local sqlite3_stmt* st = nullptr;
      if (st == nullptr) {
        sqlite3_prepare_v2(db, "INSERT INTO ledger (id, total, n) VALUES (?1, ?2, ?3) ON CONFLICT(id) DO UPDATE SET total = total + excluded.total, n = n + excluded.n", -1, &st, nullptr);
      }
      std::int64_t total = 0;
      for (auto& e : c.events) total += e.data.at("amount").get<std::int64_t>();
      sqlite3_reset(st);
      sqlite3_bind_text(st, 1, c.stream.id.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(st, 2, total);
      sqlite3_bind_int64(st, 3, static_cast<sqlite3_int64>(c.events.size()));
      if (sqlite3_step(st) != SQLITE_DONE) return catga::make_error("sqlite", sqlite3_errmsg(db), true);
      events += c.events.size();
      return {};
    };
    const auto t2 = Clock::now();
    auto p = SqliteProjection::start(store, {.name = "bench", .database = (dir / "p.db").string(), .filter = "catga.es.Ledger.>"}, h).value();
    while (p->checkpoint() < last) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const double proj = static_cast<double>(events) / seconds_since(t2);
    p.reset();
    std::filesystem::remove_all(dir);

    std::printf(
        "{\"bench\":\"eventstore\",\"raw_sync_publish_per_s\":%.0f,\"append_per_s\":%.0f,\"append_ratio\":%.3f,"
        "\"load_1000_events_ms\":%.3f,\"load_1000_with_snapshots_ms\":%.3f,\"projection_events_per_s\":%.0f}\n",
        raw, append, append / raw, load_ms, snap_ms, proj);
  }
  return 0;
}
