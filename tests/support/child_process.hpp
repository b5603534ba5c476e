#pragma once
// ChildProcess: one process a test starts (a nats-server, a worker, a
// service, the CLI), so it can be signalled, SIGKILLed or stopped like in a
// real deployment, and never outlives the test.

#include <sys/types.h>
#include <sys/wait.h>  // WIFEXITED, WEXITSTATUS for the statuses below

#include <chrono>
#include <csignal>  // SIGTERM, SIGKILL, SIGSTOP for signal()
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace catga::test {

// Starts args[0] (a path, not searched on PATH) with `args` at construction,
// with `env` added to the test's environment (a name given replaces the
// inherited value) and stdout and stderr appended to `log`. The child gets
// SIGKILL when the test process dies (parent-death signal); the destructor
// SIGKILLs and reaps it if it still runs. Wait statuses are raw (use
// WIFEXITED/WEXITSTATUS).
//
//   catga::test::ChildProcess worker({WORKER, "--url", url}, dir / "w1.log");
//   worker.signal(SIGTERM);
//   auto status = worker.wait_exit(std::chrono::seconds(30));  // nullopt: still running
class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> args, std::filesystem::path log, std::map<std::string, std::string> env = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Not reaped yet (does not look whether it exited: see alive()).
  bool running() const noexcept { return pid_ > 0; }
  // Reaps it if it has exited; true while it runs.
  bool alive();
  // The process id until it is reaped, then -1.
  pid_t pid() const noexcept { return pid_; }
  // Sends `sig`; false when it is reaped already or kill() fails.
  bool signal(int sig) const noexcept;
  // The wait status once it exited (now or before); nullopt if it still runs
  // after `timeout`, or if something else reaped it.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  // SIGTERM, then SIGKILL once `timeout` has passed; waits for the exit and
  // returns the wait status (nullopt if reaped elsewhere).
  std::optional<int> stop(std::chrono::milliseconds timeout);
  // SIGKILL (a crash) and reap.
  void kill() noexcept;
  // The wait status after it was reaped.
  std::optional<int> exit_status() const noexcept { return status_; }

  const std::filesystem::path& log_path() const noexcept { return log_; }
  // The log so far (for failure messages).
  std::string log() const;

 private:
  std::filesystem::path log_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

}  // namespace catga::test
