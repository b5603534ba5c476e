#pragma once
// Helpers the TLS, auth and credentials tests share: a scratch directory,
// connect options for one attempt, spdlog captured into a string, case-blind
// search, and an event carried over JetStream to prove a connection works.
// TLS material: certificates.hpp; NKeys, JWTs and .creds: credentials.hpp.

#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include "catga/nats/options.hpp"

namespace spdlog {
class logger;
}

namespace catga::test {

// A fresh directory under the temp dir ("catga-<what>-<pid>"), removed with
// the object however the test ends.
//
//   ScratchDir dir("tls");
//   Certificates certs(dir.path());
class ScratchDir {
 public:
  explicit ScratchDir(std::string_view what);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const noexcept { return path_; }
  // Writes `text` to path()/name, readable by the owner only; returns its path.
  std::string write(std::string_view name, std::string_view text) const;

 private:
  std::filesystem::path path_;
};

// Options for one connect attempt to `url`, no background retries and no
// reconnects: a failure comes back from Connection::connect().
catga::nats::NatsOptions connect_once(std::string url, std::string name = "security-test");

// spdlog's default logger (where catga::nats logs) into a string, the
// previous logger restored however the test ends.
class CapturedLog {
 public:
  CapturedLog();
  ~CapturedLog();
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;
  std::string text();

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

// `text` in ASCII lower case.
std::string lowercase(std::string_view text);
// Whether `text` contains `word`, ignoring ASCII case.
bool mentions(std::string_view text, std::string_view word);

// Creates a JetStream transport with `options` (memory streams), publishes
// one event and waits until a consumer group got it; doctest assertions.
void check_round_trip(const catga::nats::NatsOptions& options);

}  // namespace catga::test
