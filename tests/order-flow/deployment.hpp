#pragma once
// Deployment: a nats-server (or a 3-node cluster) and `order-flow` service
// processes around it, driven over HTTP like a client would, plus the
// helpers the end-to-end tests share (e2e_test.cpp, chaos_test.cpp).
//
//   Deployment d;               // or d(Broker::cluster): 3 nodes, R3 streams and buckets
//   d.add_standard(2);          // order x2, inventory x2, payment x2, notification
//   d.start_all();
//   auto c = d.client(d.get("order-1"));
//   const std::string id = place(c, order_body("c1", {{{"sku", "A-1"}, {"qty", 1}}}, 10.0), "key-1");
//   wait_final(d, d.get("order-1"), id);
//   check_everything(d, d.get("order-1"));

#include <doctest/doctest.h>
#include <httplib.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "checks.hpp"
#include "nats_cluster.hpp"
#include "nats_server.hpp"
#include "service_process.hpp"

namespace oft {

using nlohmann::json;

struct Service {
  std::string role;
  std::string instance;
  int port = 0;                // HTTP, as the process reported it (it picks a free one)
  std::size_t log_offset = 0;  // where the log of the current run starts
  std::unique_ptr<ServiceProcess> process;
};

// The HTTP port a service logged at start ("... http=http://127.0.0.1:<port>")
// in `log` after `offset`, or 0.
inline int logged_port(const std::string& log, std::size_t offset) {
  static const std::string kMark = "http=http://127.0.0.1:";
  const auto at = log.find(kMark, offset);
  if (at == std::string::npos) return 0;
  int port = 0;
  for (auto i = at + kMark.size(); i < log.size() && log[i] >= '0' && log[i] <= '9'; ++i)
    port = port * 10 + (log[i] - '0');
  return port;
}

// What the services connect to.
enum class Broker {
  single,   // one nats-server, streams and buckets R1
  cluster,  // three clustered nats-servers, streams and buckets R3; every
            // service is given all three URLs and fails over between them
};

// A nats-server (or cluster) and the services around it. Everything stops
// with the object.
class Deployment {
 public:
  explicit Deployment(Broker broker = Broker::single) {
    if (broker == Broker::cluster) {
      cluster_ = std::make_unique<catga::test::NatsCluster>();
    } else {
      nats_ = std::make_unique<catga::test::NatsServer>();
    }
    logs_ = directory() / "logs";
    std::filesystem::create_directories(logs_);
  }
  ~Deployment() {
    // Services first, so none sees NATS vanish.
    for (auto& s : services_) s->process->terminate();
    // The logs go with the server's temp dir unless asked to keep them.
    if (const char* keep = std::getenv("ORDER_FLOW_TEST_LOGS")) {
      std::error_code ec;
      std::filesystem::copy(
          logs_, keep, std::filesystem::copy_options::recursive | std::filesystem::copy_options::overwrite_existing,
          ec);
    }
  }

  // `binary`: another build of the sample (a test-only one), else order-flow.
  Service& add(const std::string& role, const std::string& instance, std::map<std::string, std::string> env = {},
               const std::string& binary = order_flow_binary()) {
    auto s = std::make_unique<Service>();
    s->role = role;
    s->instance = instance;
    // A comma-separated list on a cluster, as an operator would set it.
    env["NATS_URL"] = nats_url();
    if (cluster_) env["ORDER_FLOW_STREAM_REPLICAS"] = "3";
    env["HTTP_PORT"] = "0";  // any free port, no race with other tests for one
    env["INSTANCE_ID"] = instance;
    env["SERVICE_NAME"] = role;
    env["ORDER_FLOW_TRANSPORT"] = "nats";
    // The order list's read model goes with the server's temp dir; a restarted
    // replica resumes its projection from the checkpoint in that file.
    env["ORDER_FLOW_DATA_DIR"] = (directory() / "data").string();
    s->process = std::make_unique<ServiceProcess>(instance, std::vector<std::string>{"--log-level", "info"}, env,
                                                  logs_ / (instance + ".log"), binary);
    services_.push_back(std::move(s));
    return *services_.back();
  }

  // The usual cast: order, two inventory, two payment, notification.
  void add_standard(int order_replicas = 1, std::map<std::string, std::string> payment_env = {}) {
    for (int i = 1; i <= order_replicas; ++i) add("order", "order-" + std::to_string(i));
    add("inventory", "inventory-1");
    add("inventory", "inventory-2");
    add("payment", "payment-1", payment_env);
    add("payment", "payment-2", payment_env);
    add("notification", "notification-1");
  }

  void start_all() {
    for (auto& s : services_) start(*s);
    for (auto& s : services_) wait_ready(*s);
  }

  // Starts (or restarts) the process of `s`; wait_ready() learns its port.
  void start(Service& s) {
    s.log_offset = s.process->log().size();
    s.port = 0;
    s.process->start();
  }

  void wait_ready(Service& s) {
    const bool ready = eventually(
        [&] {
          if (s.port == 0) s.port = logged_port(s.process->log(), s.log_offset);
          if (s.port == 0) return false;
          auto c = client(s);
          auto r = c.Get("/readyz");
          return r && r->status == 200;
        },
        std::chrono::seconds(60));
    REQUIRE_MESSAGE(ready, s.instance << " did not become ready:\n" << tail(s));
  }

  // The single server (Broker::single) or the cluster (Broker::cluster).
  catga::test::NatsServer& nats() {
    REQUIRE_MESSAGE(nats_ != nullptr, "this deployment runs on a cluster");
    return *nats_;
  }
  catga::test::NatsCluster& cluster() {
    REQUIRE_MESSAGE(cluster_ != nullptr, "this deployment runs on a single server");
    return *cluster_;
  }
  bool on_cluster() const noexcept { return cluster_ != nullptr; }
  // The server's URL, or every node's, comma separated.
  std::string nats_url() const { return cluster_ ? cluster_->url_list() : nats_->url(); }
  // The broker's temp directory (stores, logs, the services' data).
  const std::filesystem::path& directory() const { return cluster_ ? cluster_->directory() : nats_->directory(); }
  // Every service, in the order they were added.
  const std::vector<std::unique_ptr<Service>>& services() const { return services_; }
  // Where the services' logs are written.
  const std::filesystem::path& logs() const { return logs_; }

  Service& get(const std::string& instance) {
    for (auto& s : services_) {
      if (s->instance == instance) return *s;
    }
    FAIL("no service " << instance);
    throw std::logic_error("unreachable");
  }

  httplib::Client client(Service& s) {
    httplib::Client c("127.0.0.1", s.port);
    c.set_connection_timeout(std::chrono::seconds(5));
    c.set_read_timeout(std::chrono::seconds(30));
    return c;
  }

  json get_json(Service& s, const std::string& path) {
    auto c = client(s);
    auto r = c.Get(path);
    if (!r || r->status != 200) return json();
    return json::parse(r->body, nullptr, false);
  }

  // The end of every service's log (for failure messages).
  std::string tails() {
    std::string out;
    for (auto& s : services_) out += "--- " + s->instance + "\n" + tail(*s) + "\n";
    return out;
  }
  std::string tail(Service& s) {
    const std::string log = s.process->log();
    auto pos = log.size();
    for (int lines = 0; pos > 0 && lines < 15; --pos) lines += log[pos - 1] == '\n' ? 1 : 0;
    return log.substr(pos);
  }

 private:
  std::unique_ptr<catga::test::NatsServer> nats_;
  std::unique_ptr<catga::test::NatsCluster> cluster_;
  std::filesystem::path logs_;
  std::vector<std::unique_ptr<Service>> services_;
};

inline json order_body(const std::string& customer, json items, double amount) {
  return {{"customer", customer}, {"items", std::move(items)}, {"amount", amount}};
}

// POSTs an order; the order id, or "" when it was not accepted.
inline std::string place(httplib::Client& c, const json& body, const std::string& key, httplib::Headers extra = {}) {
  extra.emplace("Idempotency-Key", key);
  auto r = c.Post("/orders", extra, body.dump(), "application/json");
  if (!r || r->status != 202) return "";
  return json::parse(r->body).value("order_id", "");
}

inline bool is_final_view(const json& v) {
  const std::string s = v.value("status", "");
  const std::string saga = v.contains("saga") && v["saga"].is_object() ? v["saga"].value("status", "") : "";
  return (s == "confirmed" || s == "cancelled") && (saga == "completed" || saga == "compensated");
}

inline json wait_final(Deployment& d, Service& order, const std::string& id) {
  json view;
  const bool done = eventually(
      [&] {
        view = d.get_json(order, "/orders/" + id);
        return is_final_view(view);
      },
      std::chrono::seconds(90));
  REQUIRE_MESSAGE(done, "order " << id << " did not finish: " << view.dump() << "\n" << d.tails());
  return view;
}

inline std::vector<json> orders_of(Deployment& d, Service& order) {
  return d.get_json(order, "/orders").at("orders").get<std::vector<json>>();
}

// Checks the invariants once every order is final, and that each final
// order was notified exactly once.
inline void check_everything(Deployment& d, Service& order) {
  const auto orders = orders_of(d, order);
  const Ledger ledger = ledger_of(orders);
  check_invariants(ledger, d.get_json(d.get("inventory-1"), "/inventory"), d.get_json(d.get("payment-1"), "/payments"));
  json notes;
  CHECK(eventually(
      [&] {
        notes = d.get_json(d.get("notification-1"), "/notifications");
        return notes.value("count", 0) == static_cast<int>(orders.size());
      },
      std::chrono::seconds(60)));
  std::map<std::string, std::string> status;
  for (const auto& o : orders) status[o.at("order_id")] = o.at("status");
  std::set<std::string> notified;
  for (const auto& n : notes.at("notifications")) {
    const std::string id = n.at("order_id");
    CHECK_MESSAGE(notified.insert(id).second, "notified twice: " << id);
    CHECK(n.at("event") == (status[id] == "confirmed" ? "OrderConfirmed" : "OrderCancelled"));
  }
}

}  // namespace oft
