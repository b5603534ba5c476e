#pragma once
// Global flags of the `catga` tool and the NATS session they open.

#include <chrono>
#include <memory>
#include <string>

#include "catga/nats/connection.hpp"
#include "catga/nats/options.hpp"
#include "catga/result.hpp"

namespace catga::cli {

// Flags every subcommand shares. Unset connection flags fall back to the
// environment (NATS_URL, NATS_USER, ... as NatsOptions::from_env reads it).
//
//   GlobalOptions g;  g.server = "tls://nats:4222";  g.tls_ca = "ca.pem";
//   auto session = Session::open(g);
struct GlobalOptions {
  std::string server;
  std::string tls_ca, tls_cert, tls_key;
  bool tls = false;
  std::string user, password, token, creds;
  std::string prefix = "catga";
  std::string events_stream;  // empty: <PREFIX>_EVENTS
  std::string dlq_stream;     // empty: <PREFIX>_DLQ
  int timeout_ms = 5'000;
  bool json = false;
  bool verbose = false;

  catga::nats::NatsOptions nats_options() const;
  catga::nats::JetStreamOptions jetstream_options() const;
  std::string events() const { return jetstream_options().events_stream(); }
  std::string dead_letters() const { return jetstream_options().dead_letter_stream(); }
};

// A connected catga::nats::Connection (same TLS/auth handling and error
// texts as services); the commands use catga::nats's public API on it.
// Connects once, without background retries: a wrong password or an
// unreachable server is reported at once.
class Session {
 public:
  static Result<Session> open(const GlobalOptions& options);

  const std::shared_ptr<catga::nats::Connection>& connection() const noexcept { return connection_; }
  // The tool's --timeout: the bound of each server request.
  std::chrono::milliseconds timeout() const noexcept { return std::chrono::milliseconds(options_.timeout_ms); }
  const GlobalOptions& options() const noexcept { return options_; }

 private:
  Session(GlobalOptions options, std::shared_ptr<catga::nats::Connection> connection)
      : options_(std::move(options)), connection_(std::move(connection)) {}

  GlobalOptions options_;
  std::shared_ptr<catga::nats::Connection> connection_;
};

}  // namespace catga::cli
