#include "credentials.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <chrono>
#include <memory>
#include <stdexcept>

namespace catga::test {
namespace {

constexpr std::uint8_t kSeedPrefix = 18 << 3;  // 'S'

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

void require(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("credentials: ") + what + " failed");
}

// CRC-16/XMODEM (polynomial 0x1021, initial 0), appended little-endian.
std::uint16_t crc16(const std::vector<std::uint8_t>& bytes) {
  std::uint16_t crc = 0;
  for (const std::uint8_t b : bytes) {
    crc = static_cast<std::uint16_t>(crc ^ (b << 8));
    for (int i = 0; i < 8; ++i) {
      crc = static_cast<std::uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
  }
  return crc;
}

// RFC 4648 base32 without padding.
std::string base32(const std::vector<std::uint8_t>& bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (const std::uint8_t b : bytes) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += kAlphabet[(buffer >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += kAlphabet[(buffer << (5 - bits)) & 31];
  return out;
}

std::vector<std::uint8_t> unbase32(std::string_view text) {
  std::vector<std::uint8_t> out;
  unsigned buffer = 0;
  int bits = 0;
  for (const char c : text) {
    int v = -1;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    if (c >= '2' && c <= '7') v = c - '2' + 26;
    if (v < 0) throw std::invalid_argument("credentials: not base32");
    buffer = (buffer << 5) | static_cast<unsigned>(v);
    bits += 5;
    if (bits >= 8) {
      out.push_back(static_cast<std::uint8_t>((buffer >> (bits - 8)) & 0xff));
      bits -= 8;
    }
  }
  return out;
}

std::string with_checksum(std::vector<std::uint8_t> raw) {
  const std::uint16_t crc = crc16(raw);
  raw.push_back(static_cast<std::uint8_t>(crc & 0xff));
  raw.push_back(static_cast<std::uint8_t>(crc >> 8));
  return base32(raw);
}

std::string base64url(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (const char c : bytes) {
    buffer = (buffer << 8) | static_cast<unsigned char>(c);
    bits += 8;
    while (bits >= 6) {
      out += kAlphabet[(buffer >> (bits - 6)) & 63];
      bits -= 6;
    }
  }
  if (bits > 0) out += kAlphabet[(buffer << (6 - bits)) & 63];
  return out;
}

Pkey private_key(const std::array<std::uint8_t, 32>& seed) {
  Pkey key(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
  require(key != nullptr, "ed25519 key from seed");
  return key;
}

}  // namespace

NKey NKey::create(Role role) {
  NKey k;
  k.role_ = role;
  require(RAND_bytes(k.seed_.data(), static_cast<int>(k.seed_.size())) == 1, "random seed");
  auto key = private_key(k.seed_);
  std::size_t len = k.public_.size();
  require(EVP_PKEY_get_raw_public_key(key.get(), k.public_.data(), &len) == 1 && len == 32, "public key");
  return k;
}

std::string NKey::public_key() const {
  std::vector<std::uint8_t> raw{static_cast<std::uint8_t>(role_)};
  raw.insert(raw.end(), public_.begin(), public_.end());
  return with_checksum(std::move(raw));
}

std::string NKey::seed() const {
  const auto prefix = static_cast<std::uint8_t>(role_);
  std::vector<std::uint8_t> raw{static_cast<std::uint8_t>(kSeedPrefix | (prefix >> 5)),
                                static_cast<std::uint8_t>((prefix & 31) << 3)};
  raw.insert(raw.end(), seed_.begin(), seed_.end());
  return with_checksum(std::move(raw));
}

std::vector<std::uint8_t> NKey::sign(std::string_view data) const {
  auto key = private_key(seed_);
  MdCtx ctx(EVP_MD_CTX_new());
  require(ctx && EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) == 1, "sign init");
  std::vector<std::uint8_t> sig(64);
  std::size_t len = sig.size();
  require(EVP_DigestSign(ctx.get(), sig.data(), &len, reinterpret_cast<const unsigned char*>(data.data()),
                         data.size()) == 1,
          "sign");
  sig.resize(len);
  return sig;
}

bool NKey::verify(std::string_view public_key, std::string_view data, const std::vector<std::uint8_t>& signature) {
  const auto raw = unbase32(public_key);
  if (raw.size() != 35) return false;
  const std::vector<std::uint8_t> body(raw.begin(), raw.begin() + 33);
  if (crc16(body) != static_cast<std::uint16_t>(raw[33] | (raw[34] << 8))) return false;
  Pkey key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw.data() + 1, 32));
  if (!key) return false;
  MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) return false;
  return EVP_DigestVerify(ctx.get(), signature.data(), signature.size(),
                          reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
}

std::string sign_jwt(const NKey& issuer, nlohmann::json claims) {
  claims["iss"] = issuer.public_key();
  claims["iat"] = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  // A unique id: base32 of a hash of the claims without it.
  claims["jti"] = "";
  const std::string unsigned_claims = claims.dump();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned digest_len = 0;
  require(EVP_Digest(unsigned_claims.data(), unsigned_claims.size(), digest, &digest_len, EVP_sha256(), nullptr) == 1,
          "jti hash");
  claims["jti"] = base32(std::vector<std::uint8_t>(digest, digest + digest_len));

  const std::string header = base64url(R"({"typ":"JWT","alg":"ed25519-nkey"})");
  const std::string body = base64url(claims.dump());
  const std::string signed_part = header + "." + body;
  const auto sig = issuer.sign(signed_part);
  return signed_part + "." + base64url(std::string_view(reinterpret_cast<const char*>(sig.data()), sig.size()));
}

OperatorTrust OperatorTrust::create() {
  OperatorTrust t;
  t.op = NKey::create(NKey::Role::operator_);
  t.system = NKey::create(NKey::Role::account);
  t.account = NKey::create(NKey::Role::account);
  t.user = NKey::create(NKey::Role::user);
  t.operator_jwt = sign_jwt(t.op, {{"sub", t.op.public_key()},
                                   {"name", "catga-test-operator"},
                                   {"nats", {{"type", "operator"}, {"version", 2},
                                             {"system_account", t.system.public_key()}}}});
  nlohmann::json limits = {{"subs", -1},    {"data", -1},        {"payload", -1}, {"imports", -1},
                           {"exports", -1}, {"wildcards", true}, {"conn", -1},    {"leaf", -1}};
  auto account_claims = [&](const NKey& account, const char* name, const nlohmann::json& account_limits) {
    return nlohmann::json{{"sub", account.public_key()},
                          {"name", name},
                          {"nats", {{"type", "account"}, {"version", 2}, {"limits", account_limits}}}};
  };
  // The system account may not use JetStream; the application account may,
  // without limits.
  t.system_jwt = sign_jwt(t.op, account_claims(t.system, "SYS", limits));
  limits.update({{"mem_storage", -1}, {"disk_storage", -1}, {"streams", -1}, {"consumer", -1}});
  t.account_jwt = sign_jwt(t.op, account_claims(t.account, "APP", limits));
  t.user_jwt = sign_jwt(t.account, {{"sub", t.user.public_key()},
                                    {"name", "catga-service"},
                                    {"nats", {{"type", "user"},
                                              {"version", 2},
                                              {"pub", nlohmann::json::object()},
                                              {"sub", nlohmann::json::object()},
                                              {"subs", -1},
                                              {"data", -1},
                                              {"payload", -1}}}});
  return t;
}

std::string OperatorTrust::server_config() const {
  return "operator: " + operator_jwt + "\n" + "system_account: " + system.public_key() + "\n" +
         "resolver: MEMORY\n" + "resolver_preload: {\n" + "  " + system.public_key() + ": " + system_jwt + "\n" +
         "  " + account.public_key() + ": " + account_jwt + "\n" + "}\n";
}

std::string OperatorTrust::user_creds() const {
  return "-----BEGIN NATS USER JWT-----\n" + user_jwt +
         "\n------END NATS USER JWT------\n\n"
         "************************* IMPORTANT *************************\n"
         "NKEY Seed printed below can be used to sign and prove identity.\n"
         "NKEYs are sensitive and should be treated as secrets.\n\n"
         "-----BEGIN USER NKEY SEED-----\n" +
         user.seed() +
         "\n------END USER NKEY SEED------\n\n"
         "*************************************************************\n";
}

}  // namespace catga::test
