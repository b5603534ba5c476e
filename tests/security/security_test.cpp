// TLS with server verification, user/password and token authentication:
// the right settings connect (and carry events), wrong ones fail at connect
// with an error naming the cause, and no secret ever reaches the log.
#include <doctest/doctest.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "catga/mediator.hpp"
#include "catga/nats/connection.hpp"
#include "catga/nats/jetstream_transport.hpp"
#include "certificates.hpp"
#include "nats_server.hpp"
#include "wait_for.hpp"
#ifdef CATGA_CLI
#include "run_cli.hpp"
#endif

using catga::nats::Connection;
using catga::nats::NatsOptions;
using namespace std::chrono_literals;

namespace sec_test {
struct Audited {
  std::string what;
};
CATGA_EVENT(Audited, what)
}  // namespace sec_test

namespace {

constexpr const char* kPassword = "pw-Zq81-never-log-me";
constexpr const char* kWrongPassword = "pw-wrong-7Hc2-never-log-me";
constexpr const char* kToken = "tok-Lk29-never-log-me";
constexpr const char* kWrongToken = "tok-wrong-Pp40-never-log-me";

// Sends spdlog's default logger (where catga::nats logs) into a string.
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    auto logger = std::make_shared<spdlog::logger>("captured", sink);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  std::string text() {
    spdlog::default_logger()->flush();
    return out_.str();
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool mentions(const std::string& text, std::string_view word) { return lower(text).find(word) != std::string::npos; }

// The part of a connect error after "connect to <url>: " (the URL may
// contain "tls" itself).
std::string cause(const catga::Error& e) {
  const auto at = e.message.find(": ");
  return at == std::string::npos ? e.message : e.message.substr(at + 2);
}

// One attempt, no background retries: the failure comes back from connect().
NatsOptions once(std::string url) {
  NatsOptions o;
  o.servers = {std::move(url)};
  o.name = "security-test";
  o.retry_on_failed_connect = false;
  o.max_reconnect = 0;
  o.connect_timeout = 10s;
  return o;
}

std::filesystem::path temp_dir(const char* what) {
  auto dir = std::filesystem::temp_directory_path() / (std::string("catga-") + what + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Publishes an event and waits for a consumer group to get it.
void round_trip(const NatsOptions& o) {
  catga::nats::JetStreamOptions js;
  js.events.storage = catga::nats::StorageType::memory;
  js.dead_letters.storage = catga::nats::StorageType::memory;
  js.startup_timeout = 20s;
  auto t = catga::nats::JetStreamTransport::create(o, js);
  REQUIRE_MESSAGE(t, (t ? "" : t.error().message));
  catga::Mediator m;
  m.attach(**t);
  std::atomic<int> got{0};
  catga::SubscribeOptions so;
  so.group = "audit";
  auto sub = m.subscribe<sec_test::Audited>(so, [&](const sec_test::Audited&) { ++got; });
  REQUIRE(sub);
  REQUIRE(m.publish(sec_test::Audited{"secured"}));
  CHECK(catga::test::wait_for([&] { return got.load() == 1; }, 30s));
  CHECK((*t)->stop(10s));
}

}  // namespace

TEST_CASE("TLS with server verification and client certificates") {
  REQUIRE_MESSAGE(catga::test::have_openssl(), "the security tests need the openssl command (apt-get install openssl)");
  CapturedLog log;
  const auto dir = temp_dir("tls");
  catga::test::Certificates certs(dir);
  catga::test::NatsServerOptions so;
  so.extra_args = {"--tls", "--tlscert", certs.file("server.pem"), "--tlskey", certs.file("server.key"),
                   "--tlscacert", certs.file("ca.pem"), "--tlsverify"};
  catga::test::NatsServer server(so);
  const std::string url = "tls://127.0.0.1:" + std::to_string(server.port());

  auto good = once(url);
  good.tls.ca_file = certs.file("ca.pem");
  good.tls.cert_file = certs.file("client.pem");
  good.tls.key_file = certs.file("client.key");

  SUBCASE("the right CA and client certificate connect and carry events") {
    auto c = Connection::connect(good);
    REQUIRE_MESSAGE(c, (c ? "" : c.error().message));
    CHECK((*c)->connected());
    round_trip(good);
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
    auto c = Connection::connect(once(server.url()));
    REQUIRE_FALSE(c);
    INFO(c.error().message);
    // nats.c upgrades to TLS when the server asks; without our CA the
    // certificate check fails: "SSL handshake error: 20:unable to get local issuer certificate".
    CHECK(mentions(cause(c.error()), "ssl"));
  }
  // Nothing above logs the key material's contents.
  CHECK(log.text().find("PRIVATE KEY") == std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("user/password: the right password connects, a wrong one fails at connect; neither is logged") {
  CapturedLog log;
  catga::test::NatsServerOptions so;
  so.config = std::string("authorization { user: alice, password: \"") + kPassword + "\" }\n";
  catga::test::NatsServer server(so);

  auto good = once(server.url());
  good.user = "alice";
  good.password = kPassword;
  round_trip(good);

  auto wrong = good;
  wrong.password = kWrongPassword;
  auto c = Connection::connect(wrong);
  REQUIRE_FALSE(c);
  INFO(c.error().message);
  CHECK(c.error().retryable == false);
  CHECK(mentions(c.error().message, "authorization"));
  CHECK(c.error().message.find(kWrongPassword) == std::string::npos);

  // The same credentials inside the URL: redacted in the error.
  auto in_url = once("nats://alice:" + std::string(kWrongPassword) + "@127.0.0.1:" + std::to_string(server.port()));
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

  auto good = once(server.url());
  good.token = kToken;
  round_trip(good);

  auto wrong = good;
  wrong.token = kWrongToken;
  auto c = Connection::connect(wrong);
  REQUIRE_FALSE(c);
  INFO(c.error().message);
  CHECK(mentions(c.error().message, "authorization"));

  auto none = once(server.url());
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
  const auto first = lower(c.error().message).find("authorization violation");
  REQUIRE(first != std::string::npos);
  CHECK(lower(c.error().message).find("authorization violation", first + 1) == std::string::npos);
}

// nats.c only sees the server hang up ("Expected 'PONG', got ''"); the error
// names the likely cause.
TEST_CASE("TLS: a missing client certificate is named") {
  REQUIRE(catga::test::have_openssl());
  const auto dir = temp_dir("tls-hint");
  catga::test::Certificates certs(dir);
  catga::test::NatsServerOptions so;
  so.extra_args = {"--tls", "--tlscert", certs.file("server.pem"), "--tlskey", certs.file("server.key"),
                   "--tlscacert", certs.file("ca.pem"), "--tlsverify"};
  catga::test::NatsServer server(so);
  auto o = once("tls://127.0.0.1:" + std::to_string(server.port()));
  o.tls.ca_file = certs.file("ca.pem");
  auto c = Connection::connect(o);
  REQUIRE_FALSE(c);
  CHECK(mentions(cause(c.error()), "client certificate"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("a credentials file that is not one is refused with a clear error") {
  catga::test::NatsServer server;
  const auto dir = temp_dir("creds");
  const auto path = (dir / "user.creds").string();
  {
    std::ofstream f(path);
    f << "this is not a JWT\n";
  }
  auto o = once(server.url());
  o.credentials_file = path;
  auto c = Connection::connect(o);
  REQUIRE_FALSE(c);
  INFO(c.error().message);
  // "no nkey user seed found in '<path>'"
  CHECK(c.error().message.find(path) != std::string::npos);
  CHECK(mentions(c.error().message, "seed"));
  CHECK(c.error().code == catga::errc::validation);
  CHECK(c.error().retryable == false);
  std::filesystem::remove_all(dir);
}

#ifdef CATGA_CLI
TEST_CASE("catga CLI: TLS and credential flags; a wrong password is named, never printed") {
  REQUIRE(catga::test::have_openssl());
  const auto dir = temp_dir("cli-tls");
  catga::test::Certificates certs(dir);
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
  std::filesystem::remove_all(dir);
}
#endif
