#include "service_process.hpp"

#include <sys/wait.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace oft {

std::string order_flow_binary() { return ORDER_FLOW_BINARY; }

ServiceProcess::ServiceProcess(std::string name, std::vector<std::string> args, std::map<std::string, std::string> env,
                               std::filesystem::path log, std::string binary)
    : name_(std::move(name)),
      binary_(std::move(binary)),
      args_(std::move(args)),
      env_(std::move(env)),
      log_(std::move(log)) {}

ServiceProcess::~ServiceProcess() {
  if (process_ && process_->running()) terminate(std::chrono::seconds(10));
}

void ServiceProcess::start() {
  if (running()) throw std::runtime_error(name_ + " is already running");
  std::vector<std::string> args = {binary_};
  args.insert(args.end(), args_.begin(), args_.end());
  process_ = std::make_unique<catga::test::ChildProcess>(std::move(args), log_, env_);
}

bool ServiceProcess::running() { return process_ && process_->alive(); }

void ServiceProcess::kill() {
  if (process_) process_->kill();
}

int ServiceProcess::terminate(std::chrono::milliseconds timeout) {
  if (!process_ || !process_->running()) return -1;
  const auto status = process_->stop(timeout);
  return status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
}

std::string ServiceProcess::log() const {
  std::ifstream in(log_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace oft
