#include "host.hpp"

#include <httplib.h>

#include <spdlog/spdlog.h>

#include "http_api.hpp"

namespace order_flow {

bool is_service_role(std::string_view role) noexcept {
  return role == "order" || role == "inventory" || role == "payment" || role == "notification" || role == "all";
}

Host::Host(HostSettings settings) : settings_(std::move(settings)) {}

Host::~Host() { stop(); }

catga::Result<std::unique_ptr<Host>> Host::start(HostSettings settings) {
  if (!is_service_role(settings.role)) {
    return catga::make_error(catga::errc::validation, "unknown role '" + settings.role + "'");
  }
  std::unique_ptr<Host> host(new Host(std::move(settings)));
  if (host->settings_.transport == "memory") {
    if (host->settings_.role != "all") {
      // Services of other processes could never be reached.
      return catga::make_error(catga::errc::validation,
                               "--transport memory runs every service in one process: use --role all");
    }
    host->infra_ = memory_infrastructure();
  } else if (host->settings_.transport == "nats") {
    auto infra = nats_infrastructure(host->settings_.nats);
    if (!infra) return std::move(infra).error();
    host->infra_ = std::move(*infra);
  } else {
    return catga::make_error(catga::errc::validation, "unknown transport '" + host->settings_.transport + "'");
  }
  if (auto s = host->start_services(); !s) {
    host->stop();
    return s.error();
  }
  if (auto s = host->start_http(); !s) {
    host->stop();
    return s.error();
  }
  return host;
}

ServiceEnv Host::env(const std::string& instance) {
  // [snippet:order-flow-env]
  ServiceEnv e;
  e.instance = instance;
  e.transport = &infra_->transport();
  e.buckets = infra_->buckets();
  e.idempotency = infra_->idempotency();
  e.metrics = metrics_;
  return e;
  // [/snippet:order-flow-env]
}

catga::Status Host::start_services() {
  const std::string& role = settings_.role;
  const bool all = role == "all";
  auto name = [&](std::string_view service, int n) {
    if (!all && !settings_.instance_id.empty()) return settings_.instance_id;
    if (!all) return std::string(service) + "-" + catga::MessageId::generate().text().str().substr(0, 8);
    return std::string(service) + "-" + std::to_string(n);
  };
  const int replicas = all ? std::max(1, settings_.replicas) : 1;
  // Handlers first, consumers of their events last, so nothing waits for a
  // service that is not up yet in a one-process run.
  if (all || role == "inventory") {
    for (int i = 1; i <= replicas; ++i) {
      inventories_.push_back(std::make_unique<InventoryService>(env(name("inventory", i))));
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
  }
  for (const auto& lag : infra_->consumer_lag()) {
    metrics_
        ->gauge("catga_consumer_pending", "Messages a consumer group has not finished yet",
                {{"type", lag.type}, {"group", lag.group}})
        .set(static_cast<double>(lag.pending));
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
  OpsHooks hooks;
  hooks.service = settings_.role;
  hooks.instance = [&]() -> std::string {
    if (settings_.role == "all") return "all";
    if (!orders_.empty()) return orders_[0]->instance();
    if (!inventories_.empty()) return inventories_[0]->instance();
    if (!payments_.empty()) return payments_[0]->instance();
    return notifications_.empty() ? std::string() : notifications_[0]->instance();
  }();
  hooks.not_ready = [this] { return infra_->not_ready(); };
  hooks.metrics_text = [this] { return metrics_text(); };
  add_ops_routes(*http_, hooks);
  if (!orders_.empty()) add_order_routes(*http_, *orders_.front());
  if (!inventories_.empty()) add_inventory_routes(*http_, *inventories_.front());
  if (!payments_.empty()) add_payment_routes(*http_, *payments_.front());
  if (!notifications_.empty()) add_notification_routes(*http_, *notifications_.front());

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

void Host::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (http_) http_->stop();
  if (http_thread_.joinable()) http_thread_.join();
  // Sagas stop first (they send commands), then consumers and servers.
  for (auto& o : orders_) o->stop();
  for (auto& s : notifications_) s->close();
  for (auto& s : payments_) s->close();
  for (auto& s : inventories_) s->close();
  if (infra_) infra_->stop();
  orders_.clear();
  notifications_.clear();
  payments_.clear();
  inventories_.clear();
}

}  // namespace order_flow
