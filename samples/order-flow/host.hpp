#pragma once
// Host: one process of the sample: the infrastructure it runs on, the
// services of its role, and its HTTP server.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "http_api.hpp"
#include "infrastructure.hpp"
#include "inventory_service.hpp"
#include "notification_service.hpp"
#include "order_service.hpp"
#include "payment_service.hpp"

namespace httplib {
class Server;
}

namespace order_flow {

// What a process runs (from flags and environment, see main.cpp).
struct HostSettings {
  // order | inventory | payment | notification | all (every service in one process)
  std::string role = "all";
  // memory (one process) | nats (JetStream; services may be separate processes)
  std::string transport = "memory";
  NatsSettings nats{};
  std::string http_host = "127.0.0.1";
  int http_port = 8080;  // 0: any free port (see Host::port)
  // Names this replica (logs, metrics, saga ownership); keep it stable across
  // restarts. Empty: "<role>-<random>". Role "all" names its services
  // "<service>-<n>".
  std::string instance_id;
  // Role "all": inventory and payment replicas in the process.
  int replicas = 2;
  // Role order/all on NATS: directory of the order list's SQLite read model.
  // Empty: a temporary directory per instance (rebuilt from the event store
  // at every start).
  std::string data_dir;
  OrderServiceOptions order{};
  PaymentOptions payment{};
  // Inventory's SKUs and their initial stock; empty: default_catalog().
  std::vector<std::pair<std::string, int>> catalog;
  HttpLimits http{};
};

// Starts the services of settings.role on the chosen infrastructure and
// serves HTTP on a background thread; stop() (or the destructor) shuts
// everything down in order: start-up, HTTP, sagas, consumers, transport.
//
// HTTP is served from the start: until the services are up, /healthz
// answers 200 (the process is alive), /readyz 503 with what start-up waits
// for ("waiting for NATS: connect to nats://nats:4222 failed (attempt 4):
// ..."), every other route 503. Over NATS, start-up waits with backoff for a
// broker, JetStream, stream leader or bucket that is not there yet
// (catga::nats::Startup) instead of failing.
//
//   auto host = order_flow::Host::start({.role = "all", .http_port = 0}).value();
//   std::cout << "listening on " << host->port();
//   ...
//   host->stop();
class Host {
 public:
  // launch(), then waits until the services are up (or start-up failed).
  static catga::Result<std::unique_ptr<Host>> start(HostSettings settings);
  // Checks the settings and binds HTTP, then starts everything else on a
  // background thread and returns. Fails at once only for what waiting
  // cannot fix (unknown role or transport, invalid NATS settings, HTTP port
  // taken).
  static catga::Result<std::unique_ptr<Host>> launch(HostSettings settings);
  ~Host();
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  // How start-up ended (OK: the services serve; else the Error that ended
  // it: a configuration error, the start-up timeout, stop()), or nullopt
  // while it is still going after `timeout`.
  std::optional<catga::Status> wait_started(std::chrono::milliseconds timeout);
  int port() const noexcept { return port_; }
  // Also ends a start-up in progress (after the try in flight).
  void stop();

  OrderService* order() noexcept { return orders_.empty() ? nullptr : orders_.front().get(); }
  const std::vector<std::unique_ptr<InventoryService>>& inventories() const noexcept { return inventories_; }
  const std::vector<std::unique_ptr<PaymentService>>& payments() const noexcept { return payments_; }
  const std::vector<std::unique_ptr<NotificationService>>& notifications() const noexcept { return notifications_; }

  // The /metrics text: the pipeline's metrics plus saga counts and consumer lag.
  std::string metrics_text();

 private:
  explicit Host(HostSettings settings);
  // The start-up thread: infrastructure, services, then the service routes.
  void run_startup();
  catga::Status start_services();
  void stop_services() noexcept;
  catga::Status start_http();
  void add_service_routes();
  // /readyz's reason: start-up's status until the services are up.
  std::string not_ready();
  ServiceEnv env(const std::string& instance);

  HostSettings settings_;
  std::string instance_;  // this replica's name (role all: "all")
  std::unique_ptr<Infrastructure> infra_;
  std::shared_ptr<catga::Metrics> metrics_ = std::make_shared<catga::Metrics>();
  // The OTLP exporter when OTEL_EXPORTER_OTLP_ENDPOINT is set (null: no
  // tracing). Declared before the services: it outlives them and flushes last.
  std::shared_ptr<catga::SpanSink> spans_;
  std::vector<std::unique_ptr<OrderService>> orders_;
  std::vector<std::unique_ptr<InventoryService>> inventories_;
  std::vector<std::unique_ptr<PaymentService>> payments_;
  std::vector<std::unique_ptr<NotificationService>> notifications_;
  std::unique_ptr<httplib::Server> http_;
  std::thread http_thread_;
  int port_ = 0;
  bool stopped_ = false;

  std::thread startup_thread_;
  // Set (release) once the services and their routes are in place; until
  // then HTTP requests never reach the routes (see start_http).
  std::atomic<bool> up_{false};
  std::mutex startup_mu_;
  std::condition_variable startup_cv_;
  std::optional<catga::Status> startup_result_;
};

// True for the roles Host runs.
bool is_service_role(std::string_view role) noexcept;

}  // namespace order_flow
