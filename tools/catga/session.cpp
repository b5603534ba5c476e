#include "session.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace catga::cli {

catga::nats::NatsOptions GlobalOptions::nats_options() const {
  catga::nats::NatsOptions o = catga::nats::NatsOptions::from_env();
  o.name = "catga-cli";
  if (!server.empty()) o.servers = {server};
  if (!user.empty()) {
    o.user = user;
    o.token.clear();
  }
  if (!password.empty()) o.password = password;
  if (!token.empty()) {
    o.token = token;
    o.user.clear();
    o.password.clear();
  }
  if (!creds.empty()) o.credentials_file = creds;
  if (!tls_ca.empty()) o.tls.ca_file = tls_ca;
  if (!tls_cert.empty()) o.tls.cert_file = tls_cert;
  if (!tls_key.empty()) o.tls.key_file = tls_key;
  if (tls) o.tls.enabled = true;
  // One attempt: an operator wants the reason now, not a background retry.
  o.retry_on_failed_connect = false;
  o.max_reconnect = 0;
  o.connect_timeout = std::chrono::milliseconds(timeout_ms);
  return o;
}

catga::nats::JetStreamOptions GlobalOptions::jetstream_options() const {
  catga::nats::JetStreamOptions js;
  js.prefix = prefix;
  js.events.name = events_stream;
  js.dead_letters.name = dlq_stream;
  return js;
}

Result<Session> Session::open(const GlobalOptions& options) {
  // Library logs go to stderr, so stdout stays a clean table or JSON
  // document; without --verbose the tool reports errors itself.
  if (spdlog::get("catga-cli") == nullptr) {
    auto logger = spdlog::stderr_color_mt("catga-cli");
    logger->set_level(options.verbose ? spdlog::level::info : spdlog::level::off);
    spdlog::set_default_logger(logger);
  }
  auto connection = catga::nats::Connection::connect(options.nats_options());
  if (!connection) return std::move(connection).error();
  return Session(options, std::move(*connection));
}

}  // namespace catga::cli
