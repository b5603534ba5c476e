// Start-up without a broker (issue 19): an `order-flow` process started
// while NATS, or JetStream, is not there yet stays alive, serves /healthz,
// says on /readyz what it waits for, and becomes ready (and serves an order)
// once the server is up; a stop signal during the wait ends it at once;
// what waiting cannot fix (bad settings, refused credentials) still fails
// fast; a NATS_URL listing several servers connects through one that
// answers. Every process runs with the library's default start-up settings.
#include <doctest/doctest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "checks.hpp"
#include "nats_server.hpp"
#include "service_process.hpp"

using namespace oft;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// One `order-flow --role all --transport nats` process (every service, over
// NATS) and what it logged.
class Process {
 public:
  Process(const std::filesystem::path& dir, const std::string& url, std::map<std::string, std::string> extra_env = {},
          const std::string& name = "startup-1")
      : log_path_(dir / (name + ".log")) {
    std::map<std::string, std::string> env{{"NATS_URL", url},
                                           {"HTTP_PORT", "0"},
                                           {"INSTANCE_ID", name},
                                           {"SERVICE_NAME", "all"},
                                           {"ORDER_FLOW_TRANSPORT", "nats"},
                                           {"ORDER_FLOW_DATA_DIR", (dir / "data").string()}};
    for (auto& [k, v] : extra_env) env[k] = v;
    process_ = std::make_unique<ServiceProcess>(name, std::vector<std::string>{"--log-level", "info"}, env,
                                                log_path_);
    process_->start();
  }

  ServiceProcess& process() { return *process_; }
  bool running() { return process_->running(); }

  // The HTTP port the process logged ("http=http://127.0.0.1:<port>"), or 0.
  int port() {
    if (port_ != 0) return port_;
    static const std::string kMark = "http=http://127.0.0.1:";
    const std::string log = process_->log();
    const auto at = log.find(kMark);
    if (at == std::string::npos) return 0;
    int port = 0;
    for (auto i = at + kMark.size(); i < log.size() && log[i] >= '0' && log[i] <= '9'; ++i) port = port * 10 + (log[i] - '0');
    return port_ = port;
  }

  httplib::Client client() {
    httplib::Client c("127.0.0.1", port());
    c.set_connection_timeout(5s);
    c.set_read_timeout(30s);
    return c;
  }

  // Status and JSON body of GET `path` (status 0 when nothing answered).
  std::pair<int, json> get(const std::string& path) {
    auto c = client();
    auto r = c.Get(path);
    if (!r) return {0, json()};
    return {r->status, json::parse(r->body, nullptr, false)};
  }

  std::string tail() const {
    const std::string log = process_->log();
    auto pos = log.size();
    for (int lines = 0; pos > 0 && lines < 25; --pos) lines += log[pos - 1] == '\n' ? 1 : 0;
    return log.substr(pos);
  }

 private:
  std::filesystem::path log_path_;
  std::unique_ptr<ServiceProcess> process_;
  int port_ = 0;
};

// The process is alive, serves /healthz, and /readyz says it is not ready
// because of something containing `reason`.
void check_waiting(Process& p, const std::string& reason) {
  REQUIRE_MESSAGE(eventually([&] { return !p.running() || p.port() != 0; }, 10s),
                  "no HTTP port logged within 10 s:\n" << p.tail());
  REQUIRE_MESSAGE(p.running(), "the process exited while waiting:\n" << p.tail());
  REQUIRE_MESSAGE(p.port() != 0, "no HTTP port logged within 10 s (HTTP is not served while it waits):\n" << p.tail());
  const auto [health, health_body] = p.get("/healthz");
  CHECK_MESSAGE(health == 200, "/healthz: " << health << " " << health_body.dump());
  json ready_body;
  const bool says_why = eventually(
      [&] {
        auto [status, body] = p.get("/readyz");
        ready_body = body;
        const std::string why = body.is_object() ? body.value("reason", "") : "";
        return status == 503 && body.value("ready", true) == false && why.find(reason) != std::string::npos &&
               why.find("attempt") != std::string::npos;
      },
      20s);
  CHECK_MESSAGE(says_why, "/readyz should be 503 with a reason containing '" << reason << "' and the attempt: "
                                                                              << ready_body.dump()
                                                                              << "\n" << p.tail());
  MESSAGE("while waiting, /readyz said: " << ready_body.value("reason", ""));
  const auto [orders, orders_body] = p.get("/orders");
  CHECK_MESSAGE(orders == 503, "other routes answer 503 while starting: " << orders << " " << orders_body.dump());
}

void check_ready_and_serving(Process& p) {
  const bool ready = eventually([&] { return p.get("/readyz").first == 200; }, 60s);
  REQUIRE_MESSAGE(ready, "not ready 60 s after the server came up:\n" << p.tail());
  auto c = p.client();
  const json body = {{"customer", "early-bird"}, {"items", {{{"sku", "A-1"}, {"qty", 1}}}}, {"amount", 20.0}};
  auto placed = c.Post("/orders", {{"Idempotency-Key", "startup-1"}}, body.dump(), "application/json");
  REQUIRE(placed);
  REQUIRE_MESSAGE(placed->status == 202, placed->body);
  const std::string id = json::parse(placed->body).at("order_id");
  json view;
  const bool done = eventually(
      [&] {
        view = p.get("/orders/" + id).second;
        return view.is_object() && view.value("status", "") == "confirmed";
      },
      60s);
  CHECK_MESSAGE(done, "order " << id << " not confirmed: " << view.dump() << "\n" << p.tail());
}

// A server on a port of its own, not started yet (nothing listens there).
catga::test::NatsServerOptions not_started() {
  catga::test::NatsServerOptions o;
  o.start = false;
  return o;
}

}  // namespace

TEST_CASE("a service started before its broker waits for it, says why on /readyz, then serves") {
  catga::test::NatsServer server(not_started());  // the port is chosen, nothing listens on it yet
  Process p(server.directory(), server.url());
  check_waiting(p, "waiting for NATS");
  CHECK(p.get("/readyz").second.value("reason", "").find(server.url()) != std::string::npos);
  std::this_thread::sleep_for(3s);
  REQUIRE_MESSAGE(p.running(), "the process exited while waiting for the broker:\n" << p.tail());
  server.start();
  check_ready_and_serving(p);
  CHECK(p.process().terminate() == 0);
}

// NATS_URL names every node of a cluster, comma separated, as an operator
// sets it (order_flow_chaos_cluster does): the process connects through
// whichever answers. The sample used to take the whole list for one URL and
// wait for it forever (getaddrinfo fails on it).
TEST_CASE("NATS_URL may list several servers: a service connects through the one that answers") {
  catga::test::NatsServer down(not_started());  // nothing listens on its port
  catga::test::NatsServer server;
  Process p(server.directory(), down.url() + ", " + server.url());
  check_ready_and_serving(p);
  CHECK(p.process().terminate() == 0);
}

TEST_CASE("a service started while JetStream is not enabled waits for it, then serves") {
  // The same port and store directory: first a server without JetStream,
  // then, restarted with a configuration file that enables it.
  catga::test::NatsServerOptions js_off;
  js_off.jetstream = false;
  js_off.config = "# JetStream off\n";
  catga::test::NatsServer server(js_off);
  Process p(server.directory(), server.url());
  check_waiting(p, "JetStream");
  std::this_thread::sleep_for(3s);
  REQUIRE_MESSAGE(p.running(), "the process exited while JetStream was off:\n" << p.tail());
  server.stop();
  std::ofstream(server.directory() / "server.conf") << "jetstream { store_dir: \"" << server.store_dir().string()
                                                     << "\" }\n";
  server.start();
  check_ready_and_serving(p);
  CHECK(p.process().terminate() == 0);
}

TEST_CASE("a stop signal while waiting for the broker ends the process at once, with status 0") {
  catga::test::NatsServer server(not_started());
  Process p(server.directory(), server.url());
  check_waiting(p, "waiting for NATS");
  const auto begin = std::chrono::steady_clock::now();
  const int status = p.process().terminate(std::chrono::seconds(10));
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - begin);
  MESSAGE("SIGTERM during the wait: exit status " << status << " after " << took.count() << " ms");
  CHECK_MESSAGE(status == 0, p.tail());
  CHECK(took < 5s);
}

TEST_CASE("what waiting cannot fix still fails at once: refused credentials, a missing credentials file") {
  catga::test::NatsServerOptions auth;
  auth.extra_args = {"--user", "orders", "--pass", "right"};
  catga::test::NatsServer server(auth);
  {
    Process p(server.directory(), server.url(), {{"NATS_USER", "orders"}, {"NATS_PASSWORD", "wrong"}}, "wrong-password");
    CHECK_MESSAGE(eventually([&] { return !p.running(); }, 10s), "still running with a wrong password:\n" << p.tail());
    CHECK(p.tail().find("Authorization Violation") != std::string::npos);
  }
  {
    const auto missing = (server.directory() / "missing.creds").string();
    Process p(server.directory(), server.url(), {{"NATS_CREDS", missing}}, "missing-creds");
    CHECK_MESSAGE(eventually([&] { return !p.running(); }, 10s), "still running without its credentials file");
    CHECK(p.tail().find("missing.creds") != std::string::npos);
  }
}
