// fault_worker: one consumer process of the "ledger" group, for the consumer
// crash and graceful shutdown tests. Each applied Credit appends its id to
// the effects file (one write(2) per line, so a SIGKILL never tears a line).
//
//   fault_worker --url nats://127.0.0.1:4222 --name w1 --effects w1.txt --ready w1.ready
//                [--workers 4] [--handle-ms 0] [--stall-after N] [--stop-timeout-ms 5000]
//                [--defaults 1]
//
// --defaults 1: the library's default options everywhere (fault::Member's
//   LibraryDefaults); --workers and --stop-timeout-ms are then ignored.
// --stall-after N: after N effects every handler blocks before applying (and
//   the file <effects>.stalled appears): the process holds a batch of
//   fetched, claimed, unacknowledged messages until the test kills it.
// SIGTERM/SIGINT: graceful stop (JetStreamTransport::stop with
//   --stop-timeout-ms), then exit 0.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

#include "fault_model.hpp"

namespace {

struct Args {
  std::string url, name = "worker", effects, ready;
  std::size_t workers = 4;
  int handle_ms = 0;
  long stall_after = -1;
  int stop_timeout_ms = 5000;
  bool defaults = false;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--url") a.url = v;
    else if (k == "--name") a.name = v;
    else if (k == "--effects") a.effects = v;
    else if (k == "--ready") a.ready = v;
    else if (k == "--workers") a.workers = std::stoul(v);
    else if (k == "--handle-ms") a.handle_ms = std::stoi(v);
    else if (k == "--stall-after") a.stall_after = std::stol(v);
    else if (k == "--stop-timeout-ms") a.stop_timeout_ms = std::stoi(v);
    else if (k == "--defaults") a.defaults = v == "1";
    else throw std::runtime_error("unknown argument " + k);
  }
  if (a.url.empty() || a.effects.empty()) throw std::runtime_error("--url and --effects are required");
  return a;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) out.push_back(part);
  return out;
}

}  // namespace

int main(int argc, char** argv) try {
  const Args args = parse(argc, argv);
  // Signals are taken by sigwait below; every thread started later inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const int fd = ::open(args.effects.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) throw std::runtime_error("cannot open " + args.effects);
  std::atomic<long> applied{0};
  std::atomic<bool> stalled{false};

  auto effect = [&](const fault::Credit& c) {
    if (args.stall_after >= 0 && applied.load() >= args.stall_after) {
      if (!stalled.exchange(true)) std::ofstream(args.effects + ".stalled") << "stalled\n";
      while (true) pause();  // hold the message until the SIGKILL (stop signals are blocked)
    }
    if (args.handle_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(args.handle_ms));
    const std::string line = c.id + "\n";
    if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) std::abort();
    applied++;
  };

  auto js = fault::durable_js();
  js.stop_timeout = std::chrono::milliseconds(args.stop_timeout_ms);
  auto member = args.defaults ? std::make_unique<fault::Member>(fault::Member::LibraryDefaults{}, split(args.url),
                                                                args.name, effect)
                              : std::make_unique<fault::Member>(split(args.url), args.name, effect, js, args.workers);
  if (!args.ready.empty()) std::ofstream(args.ready) << "ready\n";
  std::cerr << args.name << ": consuming\n";

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cerr << args.name << ": signal " << sig << ", stopping with " << applied.load() << " applied\n";
  const auto started = std::chrono::steady_clock::now();
  auto stopped = member->transport->stop(std::chrono::milliseconds(args.stop_timeout_ms));
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  std::cerr << args.name << ": stopped in " << took.count() << " ms (" << (stopped ? "ok" : stopped.error().message)
            << "), " << applied.load() << " applied\n";
  ::close(fd);
  return stopped ? 0 : 3;
} catch (const std::exception& e) {
  std::cerr << "fault_worker: " << e.what() << "\n";
  return 2;
}
