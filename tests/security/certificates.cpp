#include "certificates.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace catga::test {

bool have_openssl() { return std::system("openssl version > /dev/null 2>&1") == 0; }

Certificates::Certificates(std::filesystem::path dir) : dir_(std::move(dir)) {
  std::filesystem::create_directories(dir_);
  // EC keys: quick to generate on a loaded machine.
  const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const std::string script =
      "cd '" + dir_.string() + "' && " +
      "openssl req -x509 " + key + " -keyout ca.key -out ca.pem -days 2 -subj /CN=catga-test-ca && " +
      "openssl req -x509 " + key + " -keyout other_ca.key -out other_ca.pem -days 2 -subj /CN=someone-else && " +
      "openssl req " + key + " -keyout server.key -out server.csr -subj /CN=localhost && " +
      "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > server.ext && " +
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 "
      "-extfile server.ext && " +
      "openssl req " + key + " -keyout client.key -out client.csr -subj /CN=catga-client && " +
      "printf 'extendedKeyUsage=clientAuth\\n' > client.ext && " +
      "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 "
      "-extfile client.ext";
  if (std::system(("(" + script + ") > openssl.log 2>&1").c_str()) != 0) {
    std::ifstream log(dir_ / "openssl.log");
    std::stringstream text;
    text << log.rdbuf();
    throw std::runtime_error("openssl failed:\n" + text.str());
  }
}

}  // namespace catga::test
