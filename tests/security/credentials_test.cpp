// Credentials-file (.creds: user JWT + NKey seed) authentication against a
// real nats-server in operator mode: the test makes its own operator,
// accounts and user (credentials.hpp); a trusted user connects and carries
// events over JetStream, a user signed by an unknown account fails at
// connect with a clear error, and neither the seed nor the JWT reaches the
// log or an error.
#include <doctest/doctest.h>
#include <nats/nats.h>

#include <cstdlib>

#include "catga/nats/connection.hpp"
#include "credentials.hpp"
#include "nats_server.hpp"
#include "security_support.hpp"
#ifdef CATGA_CLI
#include "run_cli.hpp"
#endif

using catga::test::CapturedLog;
using catga::test::mentions;
using catga::test::NKey;
using catga::test::OperatorTrust;
using namespace std::chrono_literals;

namespace {

catga::nats::NatsOptions with_creds(const std::string& url, const std::string& creds) {
  auto o = catga::test::connect_once(url, "creds-test");
  o.credentials_file = creds;
  return o;
}

// A nats-server in operator mode that trusts a fresh operator, and a
// credentials file of that operator's user in a fresh directory (removed
// however the test ends).
//   TrustedServer ts;
//   auto c = catga::nats::Connection::connect(with_creds(ts.server.url(), ts.creds));
struct TrustedServer {
  static catga::test::NatsServerOptions trusting(const OperatorTrust& trust) {
    catga::test::NatsServerOptions so;
    so.config = trust.server_config();
    return so;
  }

  OperatorTrust trust = OperatorTrust::create();
  catga::test::NatsServer server{trusting(trust)};
  catga::test::ScratchDir dir{"trusted-creds"};
  std::string creds = dir.write("service.creds", trust.user_creds());
};

}  // namespace

TEST_CASE("NKeys: NATS text form; nats.c signs with our seed and the signature verifies") {
  const auto user = NKey::create(NKey::Role::user);
  const auto seed = user.seed();
  const auto pub = user.public_key();
  CHECK(seed.size() == 58);
  CHECK(seed.rfind("SU", 0) == 0);
  CHECK(pub.size() == 56);
  CHECK(pub[0] == 'U');
  CHECK(NKey::create(NKey::Role::account).seed().rfind("SA", 0) == 0);
  CHECK(NKey::create(NKey::Role::operator_).public_key()[0] == 'O');

  // nats.c decodes the seed (prefix, checksum) and signs a nonce with it.
  unsigned char* sig = nullptr;
  int sig_len = 0;
  REQUIRE(nats_Open(-1) == NATS_OK);  // the library's crypto setup (idempotent)
  const natsStatus signed_status = nats_Sign(seed.c_str(), "nonce-1234", &sig, &sig_len);
  INFO(std::string(nats_GetLastError(nullptr)));
  REQUIRE(signed_status == NATS_OK);
  const std::vector<std::uint8_t> signature(sig, sig + sig_len);
  std::free(sig);
  CHECK(NKey::verify(pub, "nonce-1234", signature));
  CHECK_FALSE(NKey::verify(pub, "nonce-1235", signature));
  CHECK_FALSE(NKey::verify(NKey::create(NKey::Role::user).public_key(), "nonce-1234", signature));
  // A corrupted checksum is refused by nats.c too.
  std::string broken = seed;
  broken[10] = broken[10] == 'A' ? 'B' : 'A';
  unsigned char* sig2 = nullptr;
  int len2 = 0;
  CHECK(nats_Sign(broken.c_str(), "x", &sig2, &len2) != NATS_OK);
  std::free(sig2);
}

TEST_CASE("credentials file: every connect is authorized, although nats.c 3.4.1 leaves out one signature in 256") {
  // nats.c 3.4.1 base64-encodes the signed nonce with an encoder that stops
  // at a leading 0 byte: one CONNECT in 256 carries no signature and is
  // refused. Connection::connect tries again with a new nonce. Without that,
  // 1,200 connects all succeed only with probability (255/256)^1200 < 1 %.
  TrustedServer ts;
  const auto options = with_creds(ts.server.url(), ts.creds);
  int refused = 0;
  std::string first_error;
  for (int i = 0; i < 1200; ++i) {
    auto c = catga::nats::Connection::connect(options);
    if (!c) {
      if (refused++ == 0) first_error = c.error().message;
    }
  }
  INFO(first_error);
  CHECK(refused == 0);
}

TEST_CASE("credentials file: a trusted user connects and carries events; an unknown one fails at connect; "
          "seeds and JWTs are never logged") {
  CapturedLog log;
  TrustedServer ts;

  {
    INFO("server log:\n" << ts.server.log());
    catga::test::check_round_trip(with_creds(ts.server.url(), ts.creds));
  }

  // A well-formed user of an operator and account this server never heard of.
  const auto stranger = OperatorTrust::create();
  const auto bad = ts.dir.write("stranger.creds", stranger.user_creds());
  auto c = catga::nats::Connection::connect(with_creds(ts.server.url(), bad));
  REQUIRE_FALSE(c);
  INFO(c.error().message);
  CHECK(c.error().retryable == false);
  CHECK(mentions(c.error().message, "authorization"));

  const std::string text = log.text();
  CHECK(mentions(text, "authorization violation"));  // the failure itself is logged
  for (const auto& secret : {ts.trust.user.seed(), stranger.user.seed(), ts.trust.user_jwt, stranger.user_jwt}) {
    CHECK(text.find(secret) == std::string::npos);
    CHECK(c.error().message.find(secret) == std::string::npos);
  }

#ifdef CATGA_CLI
  // The operator CLI with --creds: the trusted file lists the stream the
  // transport made; the stranger's is refused; neither secret is printed.
  auto listed = catga::test::run_cli(CATGA_CLI, {"--server", ts.server.url(), "--creds", ts.creds, "streams"});
  INFO(listed.err);
  CHECK(listed.exit_code == 0);
  CHECK(listed.out.find("CATGA_EVENTS") != std::string::npos);
  auto refused = catga::test::run_cli(CATGA_CLI, {"--server", ts.server.url(), "--creds", bad, "-v", "streams"});
  INFO(refused.err);
  CHECK(refused.exit_code == 1);
  CHECK(mentions(refused.err, "authorization"));
  for (const auto& secret : {ts.trust.user.seed(), stranger.user.seed(), ts.trust.user_jwt, stranger.user_jwt}) {
    CHECK(listed.out.find(secret) == std::string::npos);
    CHECK(listed.err.find(secret) == std::string::npos);
    CHECK(refused.out.find(secret) == std::string::npos);
    CHECK(refused.err.find(secret) == std::string::npos);
  }
#endif
}
