#pragma once
// NatsServer: a real nats-server for integration tests, on a free loopback
// port with JetStream and a private store directory.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "child_process.hpp"

namespace catga::test {

// How to start the server.
struct NatsServerOptions {
  // The binary; empty: $CATGA_NATS_SERVER, else nats-server on PATH, else /usr/sbin/nats-server.
  std::string binary;
  bool jetstream = true;
  // More command-line arguments (auth, TLS flags, --cluster, ...).
  std::vector<std::string> extra_args;
  // Text of a configuration file, written to the temp dir and passed with -c.
  std::string config;
  // Start in the constructor (else call start(); url() is known before).
  bool start = true;
  // How long start() waits for the port to accept connections.
  std::chrono::milliseconds start_timeout{30'000};
};

// Owns one nats-server process and its temp directory (JetStream store and
// log). The port is chosen once, so restart() comes back on the same URL with
// the same store: streams, consumers and messages survive it. The destructor
// stops the server and removes the directory. If the test process dies, the
// server gets SIGKILL too (parent-death signal), so nothing is left behind.
//
//   catga::test::NatsServer server;          // started, JetStream on
//   connect_to(server.url());                 // "nats://127.0.0.1:<port>"
//   server.restart();                         // same port, same store
class NatsServer {
 public:
  explicit NatsServer(NatsServerOptions options = {});
  ~NatsServer();
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  // Starts the process and waits until the port accepts connections.
  // Throws std::runtime_error (with the log tail) when it does not come up.
  void start();
  // SIGTERM, then waits for exit (SIGKILL after 10 s). A no-op when stopped.
  void stop();
  // SIGKILL: a crash, no graceful shutdown.
  void kill();
  // stop() then start() on the same port and store directory.
  void restart();

  bool running() const noexcept { return process_ && process_->running(); }
  int port() const noexcept { return port_; }
  // The process id while running (-1 when stopped).
  pid_t pid() const noexcept { return running() ? process_->pid() : -1; }
  std::string url() const;
  const std::filesystem::path& directory() const noexcept { return dir_; }
  std::filesystem::path store_dir() const { return dir_ / "jetstream"; }
  // The server's log so far (for failure messages).
  std::string log() const;

 private:
  NatsServerOptions options_;
  std::filesystem::path dir_;
  std::string binary_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

// A free TCP port on 127.0.0.1 (bound to port 0, then released).
int free_loopback_port();

// The nats-server binary: `configured` if set, else $CATGA_NATS_SERVER, else
// nats-server on PATH, else /usr/sbin/nats-server.
std::string nats_server_binary(const std::string& configured);

// Whether the nats-server binary (see nats_server_binary) is older than
// `major.minor`, from `<binary> --version` ("nats-server: v2.9.10"). Throws
// when the version cannot be read.
//   if (catga::test::nats_server_older_than(2, 10)) ...
bool nats_server_older_than(int major, int minor, const std::string& configured = {});

// True when something accepts TCP connections on 127.0.0.1:<port>.
bool loopback_port_accepts(int port);

}  // namespace catga::test
