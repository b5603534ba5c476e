// TLS with server verification, user/password and token authentication:
// the right settings connect (and carry events), wrong ones fail at connect
// with an error naming the cause, and no secret ever reaches the log.
#include <doctest/doctest.h>

#include <string>

#include "catga/nats/connection.hpp"
#include "certificates.hpp"
#include "nats_server.hpp"
#include "security_support.hpp"
#ifdef CATGA_CLI
#include "run_cli.hpp"
#endif

using catga::nats::Connection;
using catga::nats::NatsOptions;
using catga::test::CapturedLog;
using catga::test::mentions;
using namespace std::chrono_literals;

namespace {

constexpr const char* kPassword = "pw-Zq81-never-log-me";
constexpr const char* kWrongPassword = "pw-wrong-7Hc2-never-log-me";
constexpr const char* kToken = "tok-Lk29-never-log-me";
constexpr const char* kWrongToken = "tok-wrong-Pp40-never-log-me";

// The part of a connect error after "connect to <url>: " (the URL may
// contain "tls" itself).
std::string cause(const catga::Error& e) {
  const auto at = e.message.find(": ");
  return at == std::string::npos ? e.message : e.message.substr(at + 2);
}

}  // namespace

TEST_CASE("TLS with server verification and client certificates") {
  REQUIRE_MESSAGE(catga::test::have_openssl(), "the security tests need the openssl command (apt-get install openssl)");
  CapturedLog log;
  const catga::test::ScratchDir dir("tls");
  catga::test::Certificates certs(dir.path());
  catga::test::NatsServerOptions so;
  so.extra_args = {"--tls", "--tlscert", certs.file("server.pem"), "--tlskey", certs.file("server.key"),
                   "--tlscacert", certs.file("ca.pem"), "--tlsverify"};
  catga::test::NatsServer server(so);
  const std::string url = "tls://127.0.0.1:" + std::to_string(server.port());

  auto good = catga::test::connect_once(url);
  good.tls.ca_file = certs.file("ca.pem");
  good.tls.cert_file = certs.file("client.pem");
  good.tls.key_file = certs.file("client.key");

  SUBCASE("the right CA and client certificate connect and carry events") {
    auto c = Connection::connect(good);
    REQUIRE_MESSAGE(c, (c ? "" : c.error().message));
    CHECK((*c)->connected());
    catga::test::check_round_trip(good);
  }
  SUBCASE("a server certificate from an untrusted CA is refused at connect") {
    auto o = good;
    o.tls.ca_file = certs.file("other_ca.pem");
    auto c = Connection::connect(o);
    REQUIRE_FALSE(c);
    INFO(c.error().message);
    CHECK(c.error().retryable == false);
    // nats.c/OpenSSL: "SSL handshake error: 20:unable to get local issuer certificate ..."
    CHECK(mentions(cause(c.error()), "ssl"));
    CHECK(mentions(cause(c.error()), "issuer certificate"));
  }
  SUBCASE("a host name the certificate does not name is refused") {
    auto o = good;
    o.tls.expected_hostname = "billing.example.com";
    auto c = Connection::connect(o);
    REQUIRE_FALSE(c);
    INFO(c.error().message);
    // "SSL handshake error: 62:hostname mismatch:expected=billing.example.com:cert=/CN=localhost"
    CHECK(mentions(cause(c.error()), "hostname mismatch"));
  }
  SUBCASE("without a client certificate the server refuses us") {
    auto o = good;
    o.tls.cert_file.clear();
    o.tls.key_file.clear();
    auto c = Connection::connect(o);
    REQUIRE_FALSE(c);
    INFO(c.error().message);
    CHECK(c.error().retryable == false);
    // The server drops the connection after its side of the handshake
    // fails; nats.c only says "Protocol Error: Expected 'PONG', got ''", so
    // connect names the likely cause.
    CHECK(mentions(cause(c.error()), "client certificate"));
  }
  SUBCASE("a plain connection to a TLS-only server is refused") {
    auto c = Connection::connect(catga::test::connect_once(server.url()));
    REQUIRE_FALSE(c);
    INFO(c.error().message);
    // nats.c upgrades to TLS when the server asks; without our CA the
    // certificate check fails: "SSL handshake error: 20:unable to get local issuer certificate".
    CHECK(mentions(cause(c.error()), "ssl"));
  }
  // Nothing above logs the key material's contents.
  CHECK(log.text().find("PRIVATE KEY") == std::string::npos);
}

TEST_CASE("user/password: the right password connects, a wrong one fails at connect; neither is logged") {
  CapturedLog log;
  catga::test::NatsServerOptions so;
  so.config = std::string("authorization { user: alice, password: \"") + kPassword + "\" }\n";
  catga::test::NatsServer server(so);

  auto good = catga::test::connect_once(server.url());
  good.user = "alice";
  good.password = kPassword;
  catga::test::check_round_trip(good);

  auto wrong = good;
  wrong.password = kWrongPassword;
  auto c = Connection::connect(wrong);
  REQUIRE_FALSE(c);
  INFO(c.error().message);
  CHECK(c.error().retryable == false);
  CHECK(mentions(c.error().message, "authorization"));
  CHECK(c.error().message.find(kWrongPassword) == std::string::npos);

  // The same credentials inside the URL: redacted in the error.
  auto in_url = catga::test::connect_once("nats://alice:" + std::string(kWrongPassword) + "@127.0.0.1:" + std::to_string(server.port()));
  auto u = Connection::connect(in_url);
  REQUIRE_FALSE(u);
  INFO(u.error().message);
  CHECK(mentions(u.error().message, "authorization"));
  CHECK(u.error().message.find(kWrongPassword) == std::string::npos);

  const auto text = log.text();
  CHECK(mentions(text, "authorization violation"));  // the failure itself is logged
  CHECK(text.find(kPassword) == std::string::npos);
  CHECK(text.find(kWrongPassword) == std::string::npos);
}

TEST_CASE("token: the right token connects, a wrong one fails at connect; neither is logged") {
  CapturedLog log;
  catga::test::NatsServerOptions so;
  so.config = std::string("authorization { token: \"") + kToken + "\" }\n";
  catga::test::NatsServer server(so);

  auto good = catga::test::connect_once(server.url());
  good.token = kToken;
  catga::test::check_round_trip(good);

  auto wrong = good;
  wrong.token = kWrongToken;
  auto c = Connection::connect(wrong);
  REQUIRE_FALSE(c);
  INFO(c.error().message);
  CHECK(mentions(c.error().message, "authorization"));

  auto none = catga::test::connect_once(server.url());
  auto n = Connection::connect(none);
  REQUIRE_FALSE(n);
  CHECK(mentions(n.error().message, "authorization"));

  const auto text = log.text();
  CHECK(text.find("security-test") != std::string::npos);
  CHECK(text.find(kToken) == std::string::npos);
  CHECK(text.find(kWrongToken) == std::string::npos);
}

// Services keep the default retry_on_failed_connect: background retries are
// only for "no server yet", so a wrong password still fails at connect().
TEST_CASE("a retrying first connect still reports a wrong password") {
  catga::test::NatsServerOptions so;
  so.config = std::string("authorization { user: alice, password: \"") + kPassword + "\" }\n";
  catga::test::NatsServer server(so);
  NatsOptions o;
  o.servers = {server.url()};
  o.user = "alice";
  o.password = kWrongPassword;
  auto c = Connection::connect(o);
  REQUIRE_FALSE(c);
  INFO(c.error().message);
  CHECK(mentions(c.error().message, "authorization"));
  CHECK(c.error().retryable == false);
  CHECK(c.error().message.find(kWrongPassword) == std::string::npos);
  // nats.c's source location is not part of the message, nor is the status said twice.
  CHECK(c.error().message.find(".c:") == std::string::npos);
  const auto message = catga::test::lowercase(c.error().message);
  const auto first = message.find("authorization violation");
  REQUIRE(first != std::string::npos);
  CHECK(message.find("authorization violation", first + 1) == std::string::npos);
}

// nats.c only sees the server hang up ("Expected 'PONG', got ''"); the error
// names the likely cause.
TEST_CASE("TLS: a missing client certificate is named") {
  REQUIRE(catga::test::have_openssl());
  const catga::test::ScratchDir dir("tls-hint");
  catga::test::Certificates certs(dir.path());
  catga::test::NatsServerOptions so;
  so.extra_args = {"--tls", "--tlscert", certs.file("server.pem"), "--tlskey", certs.file("server.key"),
                   "--tlscacert", certs.file("ca.pem"), "--tlsverify"};
  catga::test::NatsServer server(so);
  auto o = catga::test::connect_once("tls://127.0.0.1:" + std::to_string(server.port()));
  o.tls.ca_file = certs.file("ca.pem");
  auto c = Connection::connect(o);
  REQUIRE_FALSE(c);
  CHECK(mentions(cause(c.error()), "client certificate"));
}

TEST_CASE("a credentials file that is not one is refused with a clear error") {
  catga::test::NatsServer server;
  const catga::test::ScratchDir dir("creds");
  const auto path = dir.write("user.creds", "this is not a JWT\n");
  auto o = catga::test::connect_once(server.url());
  o.credentials_file = path;
  auto c = Connection::connect(o);
  REQUIRE_FALSE(c);
  INFO(c.error().message);
  // "no nkey user seed found in '<path>'"
  CHECK(c.error().message.find(path) != std::string::npos);
  CHECK(mentions(c.error().message, "seed"));
  CHECK(c.error().code == catga::errc::validation);
  CHECK(c.error().retryable == false);
}

#ifdef CATGA_CLI
TEST_CASE("catga CLI: TLS and credential flags; a wrong password is named, never printed") {
  REQUIRE(catga::test::have_openssl());
  const catga::test::ScratchDir dir("cli-tls");
  catga::test::Certificates certs(dir.path());
  catga::test::NatsServerOptions so;
  so.config = "tls {\n  cert_file: \"" + certs.file("server.pem") + "\"\n  key_file: \"" + certs.file("server.key") +
              "\"\n  ca_file: \"" + certs.file("ca.pem") + "\"\n  verify: true\n}\n" +
              "authorization { user: ops, password: \"" + kPassword + "\" }\n";
  catga::test::NatsServer server(so);
  const std::string url = "tls://127.0.0.1:" + std::to_string(server.port());
  auto with = [&](const std::string& ca, std::vector<std::string> extra) {
    std::vector<std::string> args = {"--server",   url,  "--tls-ca", ca, "--tls-cert", certs.file("client.pem"),
                                     "--tls-key", certs.file("client.key"), "--user", "ops"};
    args.insert(args.end(), extra.begin(), extra.end());
    return catga::test::run_cli(CATGA_CLI, args);
  };
  auto ok = with(certs.file("ca.pem"), {"--password", kPassword, "streams"});
  INFO(ok.err);
  CHECK(ok.exit_code == 0);
  CHECK(ok.out.find("no streams") != std::string::npos);

  auto bad = with(certs.file("ca.pem"), {"--password", kWrongPassword, "-v", "streams"});
  INFO(bad.err);
  CHECK(bad.exit_code == 1);
  CHECK(mentions(bad.err, "authorization"));
  CHECK(bad.err.find(kWrongPassword) == std::string::npos);
  CHECK(bad.out.find(kWrongPassword) == std::string::npos);

  auto untrusted = with(certs.file("other_ca.pem"), {"--password", kPassword, "streams"});
  INFO(untrusted.err);
  CHECK(untrusted.exit_code == 1);
  CHECK(mentions(untrusted.err, "issuer certificate"));
}
#endif
