#include "host.hpp"

#include <httplib.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <utility>

#include "http_api.hpp"

#if defined(ORDER_FLOW_WITH_OTEL)
#include <catga/otel/exporter.hpp>

#include <cstdlib>
#endif

namespace order_flow {

bool is_service_role(std::string_view role) noexcept {
  return role == "order" || role == "inventory" || role == "payment" || role == "notification" || role == "all";
}

Host::Host(HostSettings settings) : settings_(std::move(settings)) {
  // One name for every start-up attempt (logs, metrics, saga ownership).
  if (settings_.role == "all") {
    instance_ = "all";
  } else if (!settings_.instance_id.empty()) {
    instance_ = settings_.instance_id;
  } else {
    instance_ = settings_.role + "-" + catga::MessageId::generate().text().str().substr(0, 8);
  }
}

Host::~Host() { stop(); }

catga::Result<std::unique_ptr<Host>> Host::start(HostSettings settings) {
  auto host = launch(std::move(settings));
  if (!host) return host;
  auto started = (*host)->wait_started(std::chrono::milliseconds::max());
  if (started && !*started) {
    (*host)->stop();
    return started->error();
  }
  return host;
}

catga::Result<std::unique_ptr<Host>> Host::launch(HostSettings settings) {
  if (!is_service_role(settings.role)) {
    return catga::make_error(catga::errc::validation, "unknown role '" + settings.role + "'");
  }
  std::unique_ptr<Host> host(new Host(std::move(settings)));
#if defined(ORDER_FLOW_WITH_OTEL)
  // Traces go to an OpenTelemetry collector when OTEL_EXPORTER_OTLP_ENDPOINT
  // is set (docs/operations.md, "Traces"); wrong OTEL_* values stop here.
  auto otel = catga::otel::ExporterOptions::from_env();
  if (!otel) return std::move(otel).error();
  if (*otel) {
    auto& o = **otel;
    if (std::getenv("OTEL_SERVICE_NAME") == nullptr && o.service_name == "unknown_service") {
      o.service_name = "order-flow-" + host->settings_.role;
    }
    o.resource_attributes.emplace_back("service.instance.id", host->instance_);
    host->spans_ = catga::otel::Exporter::start(std::move(o));
  }
#endif
  if (host->settings_.transport == "memory") {
    if (host->settings_.role != "all") {
      // Services of other processes could never be reached.
      return catga::make_error(catga::errc::validation,
                               "--transport memory runs every service in one process: use --role all");
    }
    host->infra_ = memory_infrastructure();
  } else if (host->settings_.transport == "nats") {
    NatsSettings nats = host->settings_.nats;
    nats.metrics = host->metrics_;
    auto infra = nats_infrastructure(nats);
    if (!infra) return std::move(infra).error();
    host->infra_ = std::move(*infra);
  } else {
    return catga::make_error(catga::errc::validation, "unknown transport '" + host->settings_.transport + "'");
  }
  if (auto s = host->start_http(); !s) {
    host->stop();
    return s.error();
  }
  host->startup_thread_ = std::thread([h = host.get()] { h->run_startup(); });
  return host;
}

void Host::run_startup() {
  catga::Status result;
  try {
    result = infra_->start();
    if (result) {
      // A service that cannot open its bucket or consumer yet is stopped with
      // the others and everything is tried again after a pause.
      const std::string what = settings_.role == "all" ? "the services" : "the " + settings_.role + " service";
      result = infra_->wait_for(what, [this] {
        auto s = start_services();
        if (!s) stop_services();
        return s;
      });
    }
    if (result) {
      add_service_routes();
      up_.store(true, std::memory_order_release);
      spdlog::info("role={} is ready", settings_.role);
    }
  } catch (const std::exception& e) {
    result = catga::make_error(catga::errc::internal, std::string("start-up: ") + e.what());
  }
  if (!result && result.error().code == catga::errc::cancelled) {
    spdlog::info("start-up stopped: {}", result.error().message);
  } else if (!result) {
    spdlog::error("start-up failed: {}: {}", result.error().code, result.error().message);
  }
  {
    std::lock_guard lock(startup_mu_);
    startup_result_ = std::move(result);
  }
  startup_cv_.notify_all();
}

std::optional<catga::Status> Host::wait_started(std::chrono::milliseconds timeout) {
  std::unique_lock lock(startup_mu_);
  const auto done = [&] { return startup_result_.has_value(); };
  if (timeout == std::chrono::milliseconds::max()) {
    startup_cv_.wait(lock, done);
  } else if (!startup_cv_.wait_for(lock, timeout, done)) {
    return std::nullopt;
  }
  return startup_result_;
}

std::string Host::not_ready() {
  if (!up_.load(std::memory_order_acquire)) {
    std::string why = infra_->startup_status();
    return why.empty() ? "starting" : why;
  }
  return infra_->not_ready();
}

ServiceEnv Host::env(const std::string& instance) {
  // [snippet:order-flow-env]
  ServiceEnv e;
  e.instance = instance;
  e.transport = &infra_->transport();
  e.buckets = infra_->buckets();
  e.idempotency = infra_->idempotency();
  e.metrics = metrics_;
  e.spans = spans_;
  return e;
  // [/snippet:order-flow-env]
}

catga::Status Host::start_services() {
  const std::string& role = settings_.role;
  const bool all = role == "all";
  auto name = [&](std::string_view service, int n) {
    if (!all) return instance_;
    return std::string(service) + "-" + std::to_string(n);
  };
  const int replicas = all ? std::max(1, settings_.replicas) : 1;
  // Handlers first, consumers of their events last, so nothing waits for a
  // service that is not up yet in a one-process run.
  if (all || role == "inventory") {
    for (int i = 1; i <= replicas; ++i) {
      auto catalog = settings_.catalog.empty() ? default_catalog() : settings_.catalog;
      inventories_.push_back(std::make_unique<InventoryService>(env(name("inventory", i)), std::move(catalog)));
      if (auto s = inventories_.back()->start(); !s) return s;
    }
  }
  if (all || role == "payment") {
    for (int i = 1; i <= replicas; ++i) {
      payments_.push_back(std::make_unique<PaymentService>(env(name("payment", i)), settings_.payment));
      if (auto s = payments_.back()->start(); !s) return s;
    }
  }
  if (all || role == "notification") {
    notifications_.push_back(std::make_unique<NotificationService>(env(name("notification", 1))));
    if (auto s = notifications_.back()->start(); !s) return s;
  }
  if (all || role == "order") {
    const std::string instance = name("order", 1);
    OrderServiceOptions options = settings_.order;
    auto repository = infra_->order_repository(instance, settings_.data_dir);
    if (!repository) return std::move(repository).error();
    options.repository = std::move(*repository);
    orders_.push_back(std::make_unique<OrderService>(env(instance), std::move(options)));
    if (auto s = orders_.back()->start(); !s) return s;
  }
  return {};
}

void Host::stop_services() noexcept {
  // Sagas stop first (they send commands), then consumers and servers.
  for (auto& o : orders_) o->stop();
  for (auto& s : notifications_) s->close();
  for (auto& s : payments_) s->close();
  for (auto& s : inventories_) s->close();
  orders_.clear();
  notifications_.clear();
  payments_.clear();
  inventories_.clear();
}

std::string Host::metrics_text() {
  // Gauges that need a question to the store or the broker are refreshed at
  // scrape time, outside the registry's lock.
  if (auto* o = order()) {
    if (auto counts = o->saga_counts()) {
      for (const auto& [status, n] : *counts) {
        metrics_->gauge("order_flow_sagas", "Order sagas of every instance by status", {{"status", status}})
            .set(static_cast<double>(n));
      }
    }
    for (const auto& [counter, value] : o->read_model_counters()) {
      metrics_
          ->gauge("order_flow_read_model", "The order list's projection: commits applied, dead-lettered, ignored "
                  "(double appends), consumer re-creations, checkpoint",
                  {{"counter", counter}})
          .set(value);
    }
  }
  // An ordered group has a consumer per partition, all with the same
  // labels: their lags add up.
  std::map<std::pair<std::string, std::string>, std::uint64_t> pending;
  for (const auto& lag : infra_->consumer_lag()) pending[{lag.type, lag.group}] += lag.pending;
  for (const auto& [labels, n] : pending) {
    metrics_
        ->gauge("catga_consumer_pending", "Messages a consumer group has not finished yet",
                {{"type", labels.first}, {"group", labels.second}})
        .set(static_cast<double>(n));
  }
  return metrics_->render_prometheus();
}

catga::Status Host::start_http() {
  http_ = std::make_unique<httplib::Server>();
  http_->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    res.status = 500;
    res.set_content(nlohmann::json{{"error", {{"code", "internal"}, {"message", what}}}}.dump(), "application/json");
  });
  // Until the services are up this gate answers every request itself, so
  // the routes, which add_service_routes() registers on the start-up thread
  // while the server runs, are read only after up_ (release/acquire) says
  // they are complete.
  // Every role bounds request bodies: cpp-httplib's default is no limit,
  // and it reads the body of any POST, PUT or DELETE before routing, so a
  // POST to an unknown route of any service would be held whole.
  http_->set_payload_max_length(settings_.http.max_body_bytes);
  // A response goes out as two writes (headers, body): with Nagle's
  // algorithm the body would wait for the client's delayed ACK of the
  // headers, up to 40 ms per request.
  http_->set_tcp_nodelay(true);
  // Enough threads for the connections clients keep open: with cpp-httplib's
  // 8, a 9th keep-alive client waited until one of the 8 was closed after its
  // 5th request; at 100 orders/s from 10 clients, 1 % of orders waited
  // 200 ms before their POST was read (bench_orderflow).
  http_->new_task_queue = [n = static_cast<std::size_t>(std::max(settings_.http.threads, 1))] {
    return new httplib::ThreadPool(n);
  };
  http_->set_keep_alive_max_count(static_cast<std::size_t>(std::max(settings_.http.keep_alive_requests, 1)));
  http_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    // cpp-httplib 0.11 applies that limit to bodies with a Content-Length
    // only: a chunked body, or one sent without a length until the client
    // closes, would be read whole before any handler runs. They are
    // refused unread (411), on every route, also while starting.
    if (unannounced_body(req)) {
      res.status = 411;
      res.set_header("Connection", "close");
      res.set_content(nlohmann::json{{"error",
                                      {{"code", "length_required"},
                                       {"message", "a request body needs a Content-Length (at most " +
                                                       std::to_string(settings_.http.max_body_bytes) + " bytes)"}}}}
                          .dump(),
                      "application/json");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (up_.load(std::memory_order_acquire)) return httplib::Server::HandlerResponse::Unhandled;
    const nlohmann::json who = {{"service", settings_.role}, {"instance", instance_}};
    if (req.path == "/healthz") {
      auto body = who;
      body["status"] = "ok";
      body["starting"] = true;
      res.status = 200;
      res.set_content(body.dump(), "application/json");
    } else {
      const std::string why = not_ready();
      auto body = who;
      if (req.path == "/readyz") {
        body["ready"] = false;
        body["reason"] = why;
      } else {
        body["error"] = {{"code", "unavailable"}, {"message", "the service is starting: " + why}};
      }
      res.status = 503;
      res.set_header("Retry-After", "1");
      res.set_content(body.dump(), "application/json");
    }
    return httplib::Server::HandlerResponse::Handled;
  });

  if (settings_.http_port == 0) {
    port_ = http_->bind_to_any_port(settings_.http_host);
    if (port_ <= 0) return catga::make_error(catga::errc::unavailable, "cannot bind " + settings_.http_host);
  } else {
    if (!http_->bind_to_port(settings_.http_host, settings_.http_port)) {
      return catga::make_error(catga::errc::unavailable,
                               "cannot listen on " + settings_.http_host + ":" + std::to_string(settings_.http_port));
    }
    port_ = settings_.http_port;
  }
  http_thread_ = std::thread([this] { http_->listen_after_bind(); });
  // httplib ignores a stop() that comes before the server runs: wait for it.
  for (int i = 0; i < 5000 && !http_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!http_->is_running()) return catga::make_error(catga::errc::unavailable, "the HTTP server did not start");
  spdlog::info("role={} transport={} http=http://{}:{}", settings_.role, settings_.transport, settings_.http_host,
               port_);
  return {};
}

void Host::add_service_routes() {
  OpsHooks hooks;
  hooks.service = settings_.role;
  hooks.instance = instance_;
  hooks.not_ready = [this] { return not_ready(); };
  hooks.metrics_text = [this] { return metrics_text(); };
  add_ops_routes(*http_, hooks);
  if (!orders_.empty()) add_order_routes(*http_, *orders_.front(), settings_.http);
  if (!inventories_.empty()) add_inventory_routes(*http_, *inventories_.front());
  if (!payments_.empty()) add_payment_routes(*http_, *payments_.front());
  if (!notifications_.empty()) add_notification_routes(*http_, *notifications_.front());
}

void Host::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (infra_) infra_->cancel_start();
  if (startup_thread_.joinable()) startup_thread_.join();
  if (http_) http_->stop();
  if (http_thread_.joinable()) http_thread_.join();
  stop_services();
  if (infra_) infra_->stop();
}

}  // namespace order_flow
