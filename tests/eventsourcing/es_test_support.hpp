#pragma once
// Shared by the event-sourcing tests: connections to the fixture server and
// a small bank-account aggregate.

#include <nats/nats.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "catga/eventsourcing/eventsourcing.hpp"
#include "catga/nats/connection.hpp"
#include "catga/nats/jetstream_transport.hpp"
#include "catga/nats/key_value.hpp"
#include "nats_server.hpp"
#include "raw_nats.hpp"

namespace est {

// A connection to `urls` (one server, or the nodes of a cluster), connected
// within `wait` (throws otherwise).
//
//   auto conn = est::connect_to(cluster.urls(), "es-cluster", std::chrono::seconds(60));
inline std::shared_ptr<catga::nats::Connection> connect_to(std::vector<std::string> urls, std::string name,
                                                           std::chrono::seconds wait = std::chrono::seconds(30)) {
  catga::nats::NatsOptions o;
  o.servers = std::move(urls);
  o.name = std::move(name);
  auto c = catga::nats::Connection::connect(o).value();
  c->wait_connected(wait).value();
  return c;
}

inline std::shared_ptr<catga::nats::Connection> connect(const catga::test::NatsServer& server,
                                                        std::string name = "es") {
  return connect_to({server.url()}, std::move(name));
}

// The JetStream transport on `conn` with its streams (events, dead letters)
// in memory: what the relay publishes to.
inline std::unique_ptr<catga::nats::JetStreamTransport> memory_transport(
    std::shared_ptr<catga::nats::Connection> conn) {
  catga::nats::JetStreamOptions js;
  js.events.storage = catga::nats::StorageType::memory;
  js.dead_letters.storage = catga::nats::StorageType::memory;
  return catga::nats::JetStreamTransport::create(std::move(conn), js).value();
}

inline catga::eventsourcing::EventStoreOptions memory_store() {
  catga::eventsourcing::EventStoreOptions o;
  o.stream.storage = catga::nats::StorageType::memory;
  o.timeout = std::chrono::seconds(20);
  return o;
}

inline std::shared_ptr<catga::eventsourcing::EventStore> store_on(std::shared_ptr<catga::nats::Connection> conn,
                                                                  catga::eventsourcing::EventStoreOptions o = memory_store()) {
  return catga::eventsourcing::EventStore::create(std::move(conn), std::move(o)).value();
}

inline std::shared_ptr<catga::nats::KvBucket> snapshot_bucket(std::shared_ptr<catga::nats::Connection> conn) {
  return catga::nats::KvBucket::open(std::move(conn), {.bucket = "es_snapshots", .storage = catga::nats::StorageType::memory})
      .value();
}

struct Deposited {
  std::int64_t amount = 0;
};
CATGA_EVENT(Deposited, amount)
struct Withdrawn {
  std::int64_t amount = 0;
};
CATGA_EVENT(Withdrawn, amount)
struct Renamed {
  std::string name;
};
CATGA_EVENT(Renamed, name)

// Every applied event leaves a trace in `log`, so two states are equal only
// if they saw the same events in the same order.
struct Account : catga::eventsourcing::Aggregate<Account, Deposited, Withdrawn, Renamed> {
  static constexpr std::string_view kType = "Account";
  std::int64_t balance = 0;
  std::string name;
  std::vector<std::string> log;

  void apply(const Deposited& e) {
    balance += e.amount;
    log.push_back("+" + std::to_string(e.amount));
  }
  void apply(const Withdrawn& e) {
    balance -= e.amount;
    log.push_back("-" + std::to_string(e.amount));
  }
  void apply(const Renamed& e) {
    name = e.name;
    log.push_back("n:" + e.name);
  }

  catga::Status deposit(std::int64_t amount) {
    if (amount <= 0) return catga::make_error("invalid_amount", "deposit must be positive");
    raise(Deposited{amount});
    return {};
  }
  catga::Status withdraw(std::int64_t amount) {
    if (amount > balance) return catga::make_error("insufficient_funds", "balance " + std::to_string(balance));
    raise(Withdrawn{amount});
    return {};
  }
  void rename(std::string n) { raise(Renamed{std::move(n)}); }

  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Account, balance, name, log)
};

// The body of a commit of Deposited events as EventStore::append writes it,
// claiming versions first.., with event ids <commit_id>-<version>.
inline std::string deposit_commit(const catga::eventsourcing::StreamId& s, std::uint64_t first,
                                  std::initializer_list<std::int64_t> amounts, const std::string& commit_id) {
  nlohmann::json events = nlohmann::json::array();
  std::uint64_t v = first;
  for (auto a : amounts) {
    events.push_back({{"id", commit_id + "-" + std::to_string(v)},
                      {"type", "Deposited"},
                      {"schema", 1},
                      {"version", v++},
                      {"time_ns", 1},
                      {"actor", "racer"},
                      {"correlation_id", ""},
                      {"causation_id", ""},
                      {"data", {{"amount", a}}}});
  }
  return nlohmann::json{{"stream", s.key()}, {"commit", commit_id}, {"events", events}}.dump();
}

// Stores `body` on the store subject of `s` straight through nats.c, with no
// expected-sequence condition (an old or foreign writer, or the second of a
// double append the server let through), with the given headers; returns
// its stream sequence.
//
//   raw_store(raw, acc, deposit_commit(acc, 1, {1000}, "racer"), {{"Catga-Es-Version", "1"}});
inline std::uint64_t raw_store(catga::test::RawNats& raw, const catga::eventsourcing::StreamId& s,
                               const std::string& body,
                               std::initializer_list<std::pair<const char*, std::string>> headers) {
  const std::string subject = "catga.es." + s.key();
  natsMsg* m = nullptr;
  catga::test::check(natsMsg_Create(&m, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size())), "msg");
  for (const auto& [name, value] : headers) catga::test::check(natsMsgHeader_Set(m, name, value.c_str()), "header");
  jsPubAck* ack = nullptr;
  jsErrCode jerr{};
  const natsStatus st = js_PublishMsg(&ack, raw.js(), m, nullptr, &jerr);
  natsMsg_Destroy(m);
  catga::test::check(st, "js_PublishMsg " + subject);
  const auto seq = ack->Sequence;
  jsPubAck_Destroy(ack);
  return seq;
}

}  // namespace est
