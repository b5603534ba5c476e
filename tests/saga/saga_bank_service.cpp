// saga_bank_service: the payment service of saga_nats_test's crash case, as
// a process the test can SIGKILL mid-step. Serves Charge and Refund (queue
// group "bank") with a KV idempotency store, and keeps its ledger in KV
// (see bank_service.hpp).
//
//   saga_bank_service --url nats://127.0.0.1:4222 --ready bank.ready
//                     [--stall-on <order>] [--lease-ms 1000]
//
// --stall-on: the charge of that order is applied (its ledger key written),
//   then <ready>.stalled appears and the handler never returns: the process
//   holds the step until the test kills it, as a crash after the effect and
//   before the reply.
// --lease-ms: the idempotency lease: how soon a restarted service may take
//   over a claim of its killed predecessor.
#include <unistd.h>

#include <catga/nats/connection.hpp>
#include <catga/nats/jetstream_transport.hpp>
#include <catga/nats/key_value.hpp>
#include <catga/nats/kv_idempotency_store.hpp>
#include <catga/pipeline/idempotency.hpp>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "bank_service.hpp"

namespace {

namespace cn = catga::nats;
using namespace saga_bank;

struct Args {
  std::string url, ready, stall_on;
  int lease_ms = 1000;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--url") a.url = v;
    else if (k == "--ready") a.ready = v;
    else if (k == "--stall-on") a.stall_on = v;
    else if (k == "--lease-ms") a.lease_ms = std::stoi(v);
    else throw std::runtime_error("unknown argument " + k);
  }
  if (a.url.empty() || a.ready.empty()) throw std::runtime_error("--url and --ready are required");
  return a;
}

template <class T>
T need(catga::Result<T> r, const char* what) {
  if (!r) throw std::runtime_error(std::string(what) + ": " + r.error().code + ": " + r.error().message);
  return std::move(*r);
}

}  // namespace

int main(int argc, char** argv) try {
  const Args args = parse(argc, argv);
  cn::NatsOptions no;
  no.servers = {args.url};
  no.name = "bank";
  auto conn = need(cn::Connection::connect(no), "connect");
  if (!conn->wait_connected(std::chrono::seconds(30))) throw std::runtime_error("not connected");
  cn::JetStreamOptions js;
  js.events.storage = cn::StorageType::memory;
  js.dead_letters.storage = cn::StorageType::memory;
  auto transport = need(cn::JetStreamTransport::create(conn, js), "transport");
  cn::KvBucketOptions lo;
  lo.bucket = std::string(kLedgerBucket);
  lo.storage = cn::StorageType::memory;
  auto ledger = need(cn::KvBucket::open(conn, lo), "ledger bucket");

  catga::Mediator mediator;
  mediator.attach(*transport);
  cn::KvIdempotencyOptions io;
  io.bucket = std::string(kIdempotencyBucket);
  io.storage = cn::StorageType::memory;
  catga::IdempotencyOptions idem;
  idem.store = need(cn::KvIdempotencyStore::create(conn, io), "idempotency store");
  idem.lease = std::chrono::milliseconds(args.lease_ms);
  idem.remember_failures = true;
  mediator.use(std::make_shared<catga::IdempotencyBehavior>(idem));

  mediator.handle<Charge>([&](const Charge& c, catga::Context& ctx) -> catga::Result<std::string> {
    auto refunded = ledger->get(refund_key(c.order));
    if (!refunded) return std::move(refunded).error();
    if (*refunded) return catga::make_error("refunded", "order " + c.order + " was refunded: no charge any more");
    // Keyed by the command id: a rerun of this very command (its claim taken
    // over after a crash) finds its charge; another command id charges again.
    const std::string key = charge_key(ctx.message_id.text().view());
    auto created = ledger->create(key, nlohmann::json{{"order", c.order}, {"amount", c.amount}}.dump());
    if (!created && created.error().code != catga::errc::conflict) return std::move(created).error();
    std::cerr << "bank: " << (created ? "charged " : "already charged ") << key << "\n";
    if (c.order == args.stall_on) {
      std::ofstream(args.ready + ".stalled") << key << "\n";
      for (;;) ::pause();  // the reply never leaves: the test kills the process here
    }
    return "P-" + c.order;
  });
  // Idempotent and tolerant of "nothing to undo"; its record refuses a late charge.
  mediator.handle<Refund>([&](const Refund& c) -> catga::Status {
    auto charges = ledger->keys(charge_prefix(c.order));
    if (!charges) return std::move(charges).error();
    auto created = ledger->create(refund_key(c.order), nlohmann::json(*charges).dump());
    if (!created && created.error().code != catga::errc::conflict) return std::move(created).error();
    std::cerr << "bank: refund of " << c.order << ": " << nlohmann::json(*charges).dump()
              << (created ? "" : " (refunded before)") << "\n";
    return {};
  });
  auto charge_sub = need(mediator.serve<Charge>(std::string(kServiceGroup)), "serve Charge");
  auto refund_sub = need(mediator.serve<Refund>(std::string(kServiceGroup)), "serve Refund");
  std::ofstream(args.ready) << "ready\n";
  std::cerr << "bank: serving\n";
  for (;;) ::pause();  // until SIGKILL (or SIGTERM, default action)
} catch (const std::exception& e) {
  std::cerr << "saga_bank_service: " << e.what() << "\n";
  return 2;
}
