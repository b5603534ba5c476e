#pragma once
// Test-only NATS decentralized auth: NKeys (ed25519 keys in NATS's base32
// text form), JWTs signed with them, a .creds file, and the nats-server
// configuration that trusts them (operator mode, memory resolver). Written
// from the NKeys/JWT format descriptions; nothing here is for production use.
//
//   auto trust = catga::test::OperatorTrust::create();
//   NatsServerOptions o; o.config = trust.server_config();   // operator mode
//   write(dir / "svc.creds", trust.user_creds());             // for NATS_CREDS

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace catga::test {

// An ed25519 key pair with its NKey role prefix.
class NKey {
 public:
  enum class Role : std::uint8_t { operator_ = 14 << 3, account = 0, user = 20 << 3 };

  static NKey create(Role role);
  // "O…", "A…" or "U…": 56 base32 characters.
  std::string public_key() const;
  // "SO…", "SA…" or "SU…": the seed a .creds file carries.
  std::string seed() const;
  std::vector<std::uint8_t> sign(std::string_view data) const;
  // Checks `signature` of `data` against `public_key` (any NKey's text).
  static bool verify(std::string_view public_key, std::string_view data, const std::vector<std::uint8_t>& signature);

 private:
  Role role_ = Role::user;
  std::array<std::uint8_t, 32> seed_{};
  std::array<std::uint8_t, 32> public_{};
};

// A NATS v2 JWT: header.claims.signature, each base64url without padding,
// signed by `issuer` over "header.claims". Sets iss, iat and jti in `claims`.
std::string sign_jwt(const NKey& issuer, nlohmann::json claims);

// An operator, a system account, an application account and a user of it.
struct OperatorTrust {
  NKey op, system, account, user;
  std::string operator_jwt, system_jwt, account_jwt, user_jwt;

  static OperatorTrust create();
  // nats-server configuration: trust the operator, resolve both accounts
  // from memory.
  std::string server_config() const;
  // The user's .creds file: its JWT and seed.
  std::string user_creds() const;
};

}  // namespace catga::test
