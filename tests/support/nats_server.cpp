#include "nats_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace catga::test {
namespace fs = std::filesystem;

int free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket(): " + std::string(std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string err = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error("cannot find a free port: " + err);
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

NatsServer::NatsServer(NatsServerOptions options) : options_(std::move(options)) {
  std::string tmpl = (fs::temp_directory_path() / "catga-nats-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp: " + std::string(std::strerror(errno)));
  dir_ = tmpl;
  binary_ = nats_server_binary(options_.binary);
  port_ = free_loopback_port();
  if (!options_.config.empty()) {
    std::ofstream(dir_ / "server.conf") << options_.config;
  }
  if (options_.start) {
    try {
      start();
    } catch (...) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
      throw;
    }
  }
}

NatsServer::~NatsServer() {
  try {
    stop();
  } catch (...) {
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string NatsServer::url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

std::string NatsServer::log() const {
  std::ifstream in(dir_ / "server.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void NatsServer::start() {
  if (running()) return;
  std::vector<std::string> args{binary_, "-a", "127.0.0.1", "-p", std::to_string(port_)};
  if (options_.jetstream) {
    args.insert(args.end(), {"-js", "-sd", store_dir().string()});
  }
  if (!options_.config.empty()) args.insert(args.end(), {"-c", (dir_ / "server.conf").string()});
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());

  process_ = std::make_unique<ChildProcess>(std::move(args), dir_ / "server.log");

  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  auto pause = std::chrono::milliseconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!process_->alive()) {
      process_.reset();
      throw std::runtime_error("nats-server exited at start (" + binary_ + "):\n" + log());
    }
    if (loopback_port_accepts(port_)) return;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(100));
  }
  kill();
  throw std::runtime_error("nats-server did not accept connections on port " + std::to_string(port_) + ":\n" + log());
}

void NatsServer::stop() {
  if (!running()) return;
  process_->stop(std::chrono::seconds(10));
  process_.reset();
}

void NatsServer::kill() {
  if (!running()) return;
  process_->kill();
  process_.reset();
}

void NatsServer::restart() {
  stop();
  start();
}

std::string nats_server_binary(const std::string& configured) {
  if (!configured.empty()) return configured;
  if (const char* env = std::getenv("CATGA_NATS_SERVER"); env != nullptr && *env != '\0') return env;
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::stringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
      std::filesystem::path candidate = std::filesystem::path(dir) / "nats-server";
      if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    }
  }
  return "/usr/sbin/nats-server";
}

bool nats_server_older_than(int major, int minor, const std::string& configured) {
  const std::string binary = nats_server_binary(configured);
  const std::string command = "'" + binary + "' --version 2>&1";
  FILE* out = ::popen(command.c_str(), "r");
  if (out == nullptr) throw std::runtime_error("cannot run " + command);
  char line[256] = {};
  const bool read = std::fgets(line, sizeof line, out) != nullptr;
  ::pclose(out);
  int have_major = 0, have_minor = 0;
  const char* v = read ? std::strstr(line, " v") : nullptr;
  if (v == nullptr || std::sscanf(v, " v%d.%d", &have_major, &have_minor) != 2) {
    throw std::runtime_error("cannot tell the version of " + binary + " from '" + line + "'");
  }
  return have_major < major || (have_major == major && have_minor < minor);
}

bool loopback_port_accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

}  // namespace catga::test
