// catga: the operator tool (dead letters, streams, consumer lag).
//
//   catga dlq list
//   catga --server tls://nats:4222 --tls-ca ca.pem dlq replay 17
//   catga consumers --json
//
// Full reference: docs/operations.md.

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "commands.hpp"

namespace catga::cli {

void print_json(std::ostream& out, const nlohmann::json& j) {
  out << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
}

int report(const Error& error) {
  std::cerr << "catga: error: " << error.message << (error.code.empty() ? "" : " [" + error.code + "]") << '\n';
  return 1;
}

namespace {

void add_global_flags(CLI::App& app, GlobalOptions& g) {
  const char* url = std::getenv("NATS_URL");
  app.add_option("-s,--server", g.server, "NATS server URL(s), comma separated (default: $NATS_URL or nats://127.0.0.1:4222)")
      ->default_str(url != nullptr && *url != '\0' ? url : "nats://127.0.0.1:4222");
  auto* tls = app.add_option_group("TLS and authentication (default: $NATS_CA, $NATS_CERT, $NATS_KEY, $NATS_USER, $NATS_PASSWORD, $NATS_TOKEN, $NATS_CREDS)");
  tls->add_flag("--tls", g.tls, "use TLS with the system trust store");
  tls->add_option("--tls-ca", g.tls_ca, "PEM file of CAs trusted for the server certificate");
  tls->add_option("--tls-cert", g.tls_cert, "client certificate (PEM)");
  tls->add_option("--tls-key", g.tls_key, "client private key (PEM)");
  tls->add_option("--user", g.user, "user name");
  tls->add_option("--password", g.password, "password (prefer $NATS_PASSWORD: arguments are visible to other users)");
  tls->add_option("--token", g.token, "authentication token (prefer $NATS_TOKEN)");
  tls->add_option("--creds", g.creds, "JWT + NKey credentials file");
  app.add_option("--prefix", g.prefix, "subject prefix of the deployment")->capture_default_str();
  app.add_option("--events-stream", g.events_stream, "events stream (default: <PREFIX>_EVENTS)");
  app.add_option("--dlq-stream", g.dlq_stream, "dead-letter stream (default: <PREFIX>_DLQ)");
  app.add_option("--timeout", g.timeout_ms, "milliseconds per server request")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_flag("--json", g.json, "print JSON instead of tables");
  app.add_flag("-v,--verbose", g.verbose, "log connection events to stderr");
}

}  // namespace
}  // namespace catga::cli

int main(int argc, char** argv) {
  using namespace catga::cli;
  GlobalOptions global;
  int exit_code = 0;
  CLI::App app{"catga: inspect and repair a catga deployment on NATS JetStream"};
  app.name("catga");
  app.require_subcommand(1);
  add_global_flags(app, global);
  add_dlq_command(app, global, exit_code);
  add_streams_command(app, global, exit_code);
  add_consumers_command(app, global, exit_code);
  add_outbox_command(app, global, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Usage errors exit with 2 (scripts tell them from a failed operation: 1).
    return app.exit(e) == 0 ? 0 : 2;
  }
  return exit_code;
}
