#pragma once
// Throwaway TLS material for the security tests, made with the openssl CLI.

#include <filesystem>
#include <string>

namespace catga::test {

// In `dir`: a CA (ca.pem), a server certificate for 127.0.0.1/localhost
// signed by it (server.pem/.key), a client certificate (client.pem/.key),
// and an unrelated CA (other_ca.pem) that trusts none of them.
// Throws std::runtime_error with openssl's output when openssl fails.
//
//   Certificates certs(tmp_dir);
//   o.tls.ca_file = certs.file("ca.pem");
class Certificates {
 public:
  explicit Certificates(std::filesystem::path dir);
  std::string file(const char* name) const { return (dir_ / name).string(); }

 private:
  std::filesystem::path dir_;
};

// True when `openssl` runs.
bool have_openssl();

}  // namespace catga::test
