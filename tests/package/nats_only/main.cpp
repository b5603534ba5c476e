// Links catga::nats (and through it nats.c) from an installation that has
// only the components core, pipeline and nats. No server is needed: the
// connect fails at once on a closed port.
#include <catga/nats/connection.hpp>
#include <catga/nats/options.hpp>

#include <cstdio>

int main() {
  catga::nats::NatsOptions options;
  options.servers = catga::nats::split_server_urls("nats://127.0.0.1:1");
  options.retry_on_failed_connect = false;
  options.max_reconnect = 0;
  if (!options.validate()) {
    std::fprintf(stderr, "FAIL: the options do not validate\n");
    return 1;
  }
  auto connection = catga::nats::Connection::connect(options);
  if (connection) {
    std::fprintf(stderr, "FAIL: connected to a closed port\n");
    return 1;
  }
  std::printf("catga::nats linked; connect to a closed port failed as expected: %s\n",
              connection.error().message.c_str());
  return 0;
}
