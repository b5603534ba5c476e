// Connection: retrying first connect, reconnect, auth, environment, secrets.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <thread>

#include "catga/nats/connection.hpp"
#include "certificates.hpp"
#include "nats_server.hpp"
#include "security_support.hpp"
#include "test_messages.hpp"
#include "wait_for.hpp"

using catga::nats::Connection;
using catga::nats::ConnectionState;
using catga::nats::NatsOptions;
using catga::test::CapturedLog;
using namespace std::chrono_literals;

// nats.c's spin count (libnats exports it; nats_Open sets it once).
extern "C" std::int64_t gLockSpinCount;

// Issue 26: nats.c's mutexes spun 2,000 trylocks before blocking (its
// default); at saturation on 2 cores that was 10 % of the sample's CPU. The
// first test of this binary: nothing has opened nats.c before it.
TEST_CASE("catga opens nats.c without lock spinning") {
  REQUIRE(std::getenv("CATGA_NATS_LOCK_SPIN") == nullptr);
  catga::test::NatsServer server;
  auto conn = Connection::connect(nt::nats_options(server));
  REQUIRE(conn);
  CHECK(gLockSpinCount == 0);
}

TEST_CASE("connecting before the server is up retries until it comes") {
  catga::test::NatsServerOptions so;
  so.start = false;
  catga::test::NatsServer server(so);
  auto conn = Connection::connect(nt::nats_options(server));
  REQUIRE(conn);
  CHECK((*conn)->state() == ConnectionState::connecting);
  CHECK((*conn)->wait_connected(50ms).error().code == "timeout");

  // A transport created now waits for the server as well.
  std::optional<catga::Result<std::unique_ptr<catga::nats::JetStreamTransport>>> transport;
  std::thread creator([&] { transport.emplace(catga::nats::JetStreamTransport::create(*conn, nt::js_options())); });
  server.start();
  creator.join();
  REQUIRE(transport->ok());
  CHECK((*conn)->connected());
  CHECK((*transport)->get()->health().ready());
}

TEST_CASE("the connection comes back after the server restarts, and says so") {
  catga::test::NatsServer server;
  auto conn = Connection::connect(nt::nats_options(server)).value();
  REQUIRE(conn->connected());
  CHECK(conn->connected_url() == server.url());
  server.stop();
  // The disconnect callback runs on a nats.c thread, possibly a bit later.
  REQUIRE(catga::test::wait_for(
      [&] { return conn->state() == ConnectionState::reconnecting && conn->last_error().has_value(); }));
  CHECK(conn->last_error()->code == "unavailable");
  server.start();
  REQUIRE(conn->wait_connected(30s));
  CHECK(conn->reconnects() == 1);
  REQUIRE(conn->close(2s));
  CHECK(conn->state() == ConnectionState::closed);
  CHECK(conn->wait_connected(10ms).error().code == "unavailable");
}

TEST_CASE("invalid connection settings are rejected up front") {
  NatsOptions o;
  o.servers.clear();
  CHECK(Connection::connect(o).error().code == "validation");
  o = NatsOptions{};
  o.tls.cert_file = "/nonexistent/cert.pem";
  CHECK(Connection::connect(o).error().code == "validation");
  o = NatsOptions{};
  o.credentials_file = "/nonexistent/user.creds";
  auto e = Connection::connect(o).error();
  CHECK(e.code == "validation");
  CHECK(e.message.find("credentials file") != std::string::npos);
  o = NatsOptions{};
  o.user = "u";
  o.token = "t";
  CHECK(Connection::connect(o).error().code == "validation");
}

TEST_CASE("user/password and token authentication work and credentials never reach the log") {
  CapturedLog log;
  {
    catga::test::NatsServerOptions so;
    so.extra_args = {"--user", "alice", "--pass", "s3cret-pw"};
    catga::test::NatsServer server(so);
    auto o = nt::nats_options(server);
    o.user = "alice";
    o.password = "s3cret-pw";
    auto conn = Connection::connect(o);
    REQUIRE(conn);
    REQUIRE((*conn)->wait_connected(10s));

    // Credentials in the URL work too, and are redacted.
    auto in_url = nt::nats_options(server);
    in_url.servers = {"nats://alice:s3cret-pw@127.0.0.1:" + std::to_string(server.port())};
    auto conn2 = Connection::connect(in_url);
    REQUIRE(conn2);
    REQUIRE((*conn2)->wait_connected(10s));
    CHECK((*conn2)->connected_url().find("s3cret-pw") == std::string::npos);
    server.restart();  // disconnect + reconnect lines
    REQUIRE((*conn)->wait_connected(30s));
    REQUIRE((*conn2)->wait_connected(30s));

    auto wrong = nt::nats_options(server);
    wrong.user = "alice";
    wrong.password = "wrong-pw";
    auto bad = Connection::connect(wrong);
    CHECK((!bad || !(*bad)->wait_connected(1s)));
  }
  {
    catga::test::NatsServerOptions so;
    so.extra_args = {"--auth", "tok-9f8e7d"};
    catga::test::NatsServer server(so);
    auto o = nt::nats_options(server);
    o.token = "tok-9f8e7d";
    auto conn = Connection::connect(o);
    REQUIRE(conn);
    REQUIRE((*conn)->wait_connected(10s));
    auto t = catga::nats::JetStreamTransport::create(*conn, nt::js_options());
    REQUIRE(t);
  }
  const auto text = log.text();
  CHECK(text.find("connected to") != std::string::npos);
  CHECK(text.find("s3cret-pw") == std::string::npos);
  CHECK(text.find("wrong-pw") == std::string::npos);
  CHECK(text.find("tok-9f8e7d") == std::string::npos);
}

TEST_CASE("settings come from the environment") {
  ::setenv("NATS_URL", "nats://a:4222, nats://b:4223", 1);
  ::setenv("NATS_NAME", "billing", 1);
  ::setenv("NATS_USER", "u", 1);
  ::setenv("NATS_PASSWORD", "p", 1);
  ::setenv("NATS_TOKEN", "", 1);  // empty: keeps the default
  ::setenv("NATS_CREDS", "/etc/nats/user.creds", 1);
  ::setenv("NATS_CA", "/etc/nats/ca.pem", 1);
  ::setenv("NATS_CERT", "/etc/nats/cert.pem", 1);
  ::setenv("NATS_KEY", "/etc/nats/key.pem", 1);
  NatsOptions base;
  base.token = "keep";
  auto o = NatsOptions::from_env(base);
  for (const char* v : {"NATS_URL", "NATS_NAME", "NATS_USER", "NATS_PASSWORD", "NATS_TOKEN", "NATS_CREDS", "NATS_CA",
                        "NATS_CERT", "NATS_KEY"}) {
    ::unsetenv(v);
  }
  CHECK(o.servers == std::vector<std::string>{"nats://a:4222", "nats://b:4223"});
  CHECK(o.name == "billing");
  CHECK(o.user == "u");
  CHECK(o.password == "p");
  CHECK(o.token == "keep");
  CHECK(o.credentials_file == "/etc/nats/user.creds");
  CHECK(o.tls.ca_file == "/etc/nats/ca.pem");
  CHECK(o.tls.cert_file == "/etc/nats/cert.pem");
  CHECK(o.tls.key_file == "/etc/nats/key.pem");
  CHECK(o.tls.active());
  auto defaults = NatsOptions::from_env();
  CHECK(defaults.servers == std::vector<std::string>{"nats://127.0.0.1:4222"});
}


TEST_CASE("TLS with a private CA and a client certificate") {
  const catga::test::ScratchDir dir("tls");
  catga::test::Certificates certs(dir.path());
  catga::test::NatsServerOptions so;
  so.extra_args = {"--tls",      "--tlscert", certs.file("server.pem"), "--tlskey",
                   certs.file("server.key"), "--tlscacert", certs.file("ca.pem"), "--tlsverify"};
  catga::test::NatsServer server(so);
  auto o = nt::nats_options(server);
  o.servers = {"tls://127.0.0.1:" + std::to_string(server.port())};
  o.tls.ca_file = certs.file("ca.pem");
  o.tls.cert_file = certs.file("client.pem");
  o.tls.key_file = certs.file("client.key");
  auto t = catga::nats::JetStreamTransport::create(o, nt::js_options());
  REQUIRE(t);
  catga::Mediator m;
  m.attach(**t);
  CHECK(m.publish(nt::OrderPlaced{"tls", 1}));

  // Without the client certificate the server refuses us.
  auto no_cert = o;
  no_cert.tls.cert_file.clear();
  no_cert.tls.key_file.clear();
  auto c = Connection::connect(no_cert);
  CHECK((!c || !(*c)->wait_connected(1s)));
  CHECK((*t)->stop(5s));
}
