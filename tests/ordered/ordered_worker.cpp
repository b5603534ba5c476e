// ordered_worker: one member of the "ordered" group of the ordered-group
// test, with the library's default transport options. Each handled event
// appends "<key> <n> <start_ns> <end_ns> <name>\n" to the effects file (one
// write(2) per line, so a SIGKILL never tears a line); times are
// CLOCK_MONOTONIC, shared by every process of the machine.
//
//   ordered_worker --url nats://127.0.0.1:4222 --name w1 --effects w1.txt --ready w1.ready
//                  [--workers 1] [--handle-us 2000] [--handle-ms-fixed N] [--stall-after N]
//
// --handle-us U: each handler sleeps a random 0..2U us; --handle-ms-fixed N:
//   exactly N ms instead.
// --stall-after N: after N effects every handler blocks before its effect
//   (and <effects>.stalled appears), holding its partitions until killed.
// SIGTERM: graceful stop (subscription, then transport), exit 0.
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <thread>

#include "catga/nats/jetstream_transport.hpp"
#include "catga/nats/kv_idempotency_store.hpp"
#include "catga/pipeline/idempotency.hpp"
#include "ordered_messages.hpp"

namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

std::int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

int main(int argc, char** argv) {
  std::string url, name = "worker", effects, ready;
  std::size_t workers = 1;
  int handle_us = 2000;
  long stall_after = -1;
  int handle_ms_fixed = -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--url") url = v;
    else if (k == "--name") name = v;
    else if (k == "--effects") effects = v;
    else if (k == "--ready") ready = v;
    else if (k == "--workers") workers = std::stoul(v);
    else if (k == "--handle-us") handle_us = std::stoi(v);
    else if (k == "--stall-after") stall_after = std::stol(v);
    else if (k == "--handle-ms-fixed") handle_ms_fixed = std::stoi(v);
    else {
      std::cerr << "unknown argument " << k << "\n";
      return 2;
    }
  }
  ::signal(SIGTERM, on_signal);
  ::signal(SIGINT, on_signal);
  const int fd = ::open(effects.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return 3;

  catga::nats::NatsOptions o;
  o.servers = {url};
  o.name = name;
  auto conn = catga::nats::Connection::connect(o).value();
  catga::nats::KvIdempotencyOptions kv;
  kv.bucket = "ordered_idem";
  auto store = catga::nats::KvIdempotencyStore::create(conn, kv).value();
  auto transport = catga::nats::JetStreamTransport::create(conn, catga::nats::JetStreamOptions{}).value();
  catga::Mediator m;
  m.attach(*transport);
  auto idem = catga::nats::exactly_once_idempotency(store);
  // A killed member's claims are taken over after this (default: 5 min).
  idem.lease = std::chrono::seconds(4);
  m.use(std::make_shared<catga::IdempotencyBehavior>(idem));

  std::atomic<long> done{0};
  auto effect = [&](const std::string& key, int n) {
    const auto start = monotonic_ns();
    thread_local std::mt19937 rng(std::random_device{}());
    if (handle_ms_fixed >= 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(handle_ms_fixed));
    } else if (handle_us > 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % (2 * handle_us + 1)));
    }
    if (stall_after >= 0 && done.load() >= stall_after) {
      std::ofstream(effects + ".stalled") << "stalled\n";
      while (true) std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    char line[256];
    const int len = std::snprintf(line, sizeof line, "%s %d %lld %lld %s\n", key.c_str(), n,
                                  static_cast<long long>(start), static_cast<long long>(monotonic_ns()), name.c_str());
    (void)!::write(fd, line, static_cast<std::size_t>(len));
    done.fetch_add(1);
  };
  auto sub = m.subscribe_ordered<ordered::KeyedA, ordered::KeyedB>(
                  {.group = "ordered", .workers = workers},
                  [&](const ordered::KeyedA& e) { effect(e.key, e.n); },
                  [&](const ordered::KeyedB& e) { effect(e.key, e.n); })
                 .value();
  if (!ready.empty()) std::ofstream(ready) << "ready\n";
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  sub.stop();
  (void)transport->stop(std::chrono::seconds(10));
  return 0;
}
