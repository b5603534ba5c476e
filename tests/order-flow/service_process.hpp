#pragma once
// ServiceProcess: one `order-flow` process of an end-to-end test, with its
// own HTTP port and log file.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "child_process.hpp"

namespace oft {

// The path of the order-flow binary this test was built with.
std::string order_flow_binary();

// Starts `binary args...` with `env` added to the environment, output to
// `log` (a catga::test::ChildProcess per start). The child dies with the
// test process (parent-death signal), and the destructor stops it, so no
// process outlives a test. `binary` defaults to
// the order-flow binary (a test-only build of the sample may replace it).
//
//   ServiceProcess inventory("inventory-1", {"--role", "inventory"}, {{"HTTP_PORT", "18081"}}, dir / "inv.log");
//   inventory.start();
//   inventory.kill();     // SIGKILL: a crash
//   inventory.start();    // the same command again
class ServiceProcess {
 public:
  ServiceProcess(std::string name, std::vector<std::string> args, std::map<std::string, std::string> env,
                 std::filesystem::path log, std::string binary = order_flow_binary());
  ~ServiceProcess();
  ServiceProcess(const ServiceProcess&) = delete;
  ServiceProcess& operator=(const ServiceProcess&) = delete;

  void start();
  // SIGKILL and reap.
  void kill();
  // SIGTERM; SIGKILL after `timeout`. Returns the exit status (-1 if killed).
  int terminate(std::chrono::milliseconds timeout = std::chrono::seconds(15));
  bool running();
  // The process id while it runs, else -1 (e.g. to read /proc/<pid>/status).
  pid_t pid() const noexcept { return process_ ? process_->pid() : -1; }

  const std::string& name() const noexcept { return name_; }
  std::string log() const;

 private:
  std::string name_;
  std::string binary_;
  std::vector<std::string> args_;
  std::map<std::string, std::string> env_;
  std::filesystem::path log_;
  std::unique_ptr<catga::test::ChildProcess> process_;  // the last start()
};

}  // namespace oft
