// order-flow: the sample's one binary. Runs one service (or all of them), or
// the demo driver.
//
//   order-flow --role all                                   # everything, in memory, HTTP on :8080
//   order-flow --role demo --order-url http://127.0.0.1:8080
//   NATS_URL=nats://127.0.0.1:4222 HTTP_PORT=8081 INSTANCE_ID=inventory-1 order-flow --role inventory --transport nats
#include <signal.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <iostream>

#include "demo_driver.hpp"
#include "host.hpp"

namespace {

// Blocks SIGINT/SIGTERM in every thread started after this, so sigwait()
// in main() is the one place they arrive.
sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"order-flow: the catga sample (order, inventory, payment and notification services)"};
  order_flow::HostSettings host;
  std::string log_level = "info";
  app.add_option("--role", host.role, "order | inventory | payment | notification | all | demo")
      ->envname("SERVICE_NAME")
      ->capture_default_str();
  app.add_option("--transport", host.transport, "memory (one process) | nats (JetStream)")
      ->envname("ORDER_FLOW_TRANSPORT")
      ->capture_default_str();
  app.add_option("--nats-url", host.nats.url, "NATS server URL (comma-separated: the nodes of a cluster)")
      ->envname("NATS_URL")
      ->capture_default_str();
  app.add_flag("--memory-storage", host.nats.memory_storage, "JetStream streams and buckets in memory");
  app.add_option("--stream-replicas", host.nats.replicas, "JetStream stream and KV bucket replicas")
      ->envname("ORDER_FLOW_STREAM_REPLICAS")
      ->capture_default_str();
  int startup_timeout_s = 0;
  app.add_option("--startup-timeout", startup_timeout_s,
                 "seconds to wait for NATS, JetStream, streams and buckets at start-up before exiting 1 "
                 "(0: as long as it takes; /readyz says what is missing)")
      ->envname("ORDER_FLOW_STARTUP_TIMEOUT")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--http-host", host.http_host, "HTTP listen address")->envname("HTTP_HOST")->capture_default_str();
  app.add_option("--http-port", host.http_port, "HTTP port (0: any free port)")
      ->envname("HTTP_PORT")
      ->capture_default_str();
  app.add_option("--instance-id", host.instance_id, "name of this replica (default <role>-<random>)")
      ->envname("INSTANCE_ID");
  app.add_option("--data-dir", host.data_dir, "role order: directory of the order list read model (default: a temp dir)")
      ->envname("ORDER_FLOW_DATA_DIR");
  app.add_option("--replicas", host.replicas, "role all: inventory and payment replicas")->capture_default_str();
  std::size_t max_body_bytes = order_flow::HttpLimits{}.max_body_bytes;
  app.add_option("--max-body-bytes", max_body_bytes, "largest HTTP request body accepted (413 beyond)")
      ->envname("ORDER_FLOW_MAX_BODY_BYTES")
      ->check(CLI::Range(std::size_t{1}, std::size_t{64} << 20));
  int http_threads = order_flow::HttpLimits{}.threads;
  app.add_option("--http-threads", http_threads,
                 "HTTP requests handled at once; each open keep-alive connection holds one thread")
      ->envname("ORDER_FLOW_HTTP_THREADS")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  int payment_latency_ms = 0;
  app.add_option("--payment-latency-ms", payment_latency_ms, "role payment: pretend the card provider takes this long")
      ->envname("PAYMENT_LATENCY_MS")
      ->capture_default_str();
  // spdlog::level::from_str turns an unknown name into `off`: a typo would
  // silence the service, so only spdlog's own names are accepted.
  app.add_option("--log-level", log_level, "trace | debug | info | warn | error | critical | off")
      ->envname("LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "warning", "err", "error", "critical", "off"}))
      ->capture_default_str();

  order_flow::DemoSettings demo;
  bool embedded = false;
  auto* demo_group = app.add_option_group("demo", "role demo");
  demo_group->add_option("--order-url", demo.order_url, "order service base URL")
      ->envname("ORDER_URL")
      ->capture_default_str();
  demo_group->add_option("--scrape", demo.scrape_urls, "comma-separated base URLs of every service, for /metrics")
      ->delimiter(',');
  demo_group->add_option("--orders", demo.orders, "orders to place")->capture_default_str();
  demo_group->add_option("--concurrency", demo.concurrency, "HTTP clients placing orders")->capture_default_str();
  int timeout_s = 180;
  demo_group->add_option("--timeout", timeout_s, "seconds to wait for every order to end")->capture_default_str();
  demo_group->add_flag("--embedded", embedded, "run every service in this process first (role all, any free port)");

  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(log_level));
  host.payment.latency = std::chrono::milliseconds(payment_latency_ms);
  host.http.max_body_bytes = max_body_bytes;
  host.http.threads = http_threads;
  host.nats.startup_timeout = std::chrono::seconds(startup_timeout_s);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e level=%l instance=main %v");
  host.nats.connection_name = "order-flow-" + (host.instance_id.empty() ? host.role : host.instance_id);

  if (host.role == "demo") {
    demo.timeout = std::chrono::seconds(timeout_s);
    demo.live_progress = isatty(STDOUT_FILENO) != 0;
    std::unique_ptr<order_flow::Host> local;
    if (embedded) {
      order_flow::HostSettings all = host;
      all.role = "all";
      all.http_port = 0;
      // The services' log lines would bury the demo's output (declines are logged as warnings).
      if (log_level == "info") spdlog::set_level(spdlog::level::err);
      auto started = order_flow::Host::start(all);
      if (!started) {
        std::cerr << "order-flow: " << started.error().code << ": " << started.error().message << "\n";
        return 1;
      }
      local = std::move(*started);
      demo.order_url = "http://127.0.0.1:" + std::to_string(local->port());
    }
    return order_flow::run_demo(demo, std::cout);
  }

  sigset_t stop_signals = block_stop_signals();
  // Serves /healthz at once; waits (with backoff) for NATS and its streams
  // and buckets. Only what waiting cannot fix fails here.
  auto launched = order_flow::Host::launch(host);
  if (!launched) {
    std::cerr << "order-flow: " << launched.error().code << ": " << launched.error().message << "\n";
    return 1;
  }
  auto& process = **launched;
  int signal = 0;
  bool up = false;
  while (!up) {
    // A stop signal during start-up ends the wait (after the try in flight).
    const timespec tick{0, 100'000'000};
    signal = sigtimedwait(&stop_signals, nullptr, &tick);
    if (signal > 0) break;
    if (auto started = process.wait_started(std::chrono::milliseconds(0))) {
      if (!*started) {
        std::cerr << "order-flow: " << started->error().code << ": " << started->error().message << "\n";
        process.stop();
        return 1;
      }
      up = true;
    }
  }
  if (up) sigwait(&stop_signals, &signal);
  spdlog::info("stopping on signal {}", signal);
  process.stop();
  return 0;
}
