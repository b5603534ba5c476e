#pragma once
// Shared by the event-sourcing tests: connections to the fixture server and
// a small bank-account aggregate.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "catga/eventsourcing/eventsourcing.hpp"
#include "catga/nats/connection.hpp"
#include "catga/nats/key_value.hpp"
#include "nats_server.hpp"

namespace est {

inline std::shared_ptr<catga::nats::Connection> connect(const catga::test::NatsServer& server, std::string name = "es") {
  catga::nats::NatsOptions o;
  o.servers = {server.url()};
  o.name = std::move(name);
  auto c = catga::nats::Connection::connect(o).value();
  c->wait_connected(std::chrono::seconds(30)).value();
  return c;
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

}  // namespace est
