#include "http_api.hpp"

#include <httplib.h>

#include <charconv>

#include "inventory_service.hpp"
#include "notification_service.hpp"
#include "order_service.hpp"
#include "payment_service.hpp"

namespace order_flow {
namespace {

constexpr const char* kJson = "application/json";

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(), kJson);
}

// {"error":{"code":..,"message":..}} with the HTTP status the code deserves.
void send_error(httplib::Response& res, const catga::Error& e) {
  int status = 500;
  if (e.code == catga::errc::validation || e.code == catga::errc::malformed) status = 400;
  if (e.code == errc::not_found) status = 404;
  if (e.code == errc::order_confirmed || e.code == errc::order_cancelled) status = 409;
  if (e.code == errc::idempotency_key_reused) status = 422;
  if (e.code == catga::errc::timeout) status = 504;
  if (e.code == catga::errc::unavailable || e.code == catga::errc::conflict) status = 503;
  send_json(res, status, {{"error", {{"code", e.code}, {"message", e.message}, {"retryable", e.retryable}}}});
}

void send_validation(httplib::Response& res, const catga::ValidationErrors& errors) {
  nlohmann::json fields = nlohmann::json::array();
  for (const auto& f : errors) fields.push_back({{"field", f.field}, {"message", f.message}});
  send_json(res, 400,
            {{"error",
              {{"code", catga::errc::validation},
               {"field", errors[0].field},
               {"message", errors.to_string()},
               {"fields", std::move(fields)}}}});
}

// The context of a request: a new conversation, joined to the caller's
// trace when it sent a traceparent, with a deadline.
catga::Context request_context(const httplib::Request& req) {
  catga::Context ctx = catga::Context::root();
  if (req.has_header("traceparent")) {
    if (auto tc = catga::TraceContext::parse(req.get_header_value("traceparent"))) ctx.trace = *tc;
  }
  ctx.deadline = catga::Context::Clock::now() + std::chrono::seconds(15);
  return ctx;
}

void set_context_headers(httplib::Response& res, const catga::Context& ctx) {
  res.set_header("X-Correlation-Id", ctx.correlation_id.text().str());
  res.set_header("traceparent", ctx.trace.traceparent().str());
}

// Parses a request body within the limits; the errors say why not.
catga::ValidationErrors read_body(const std::string& text, const HttpLimits& limits, nlohmann::json& out) {
  catga::ValidationErrors e;
  bool too_deep = false;
  const nlohmann::json::parser_callback_t depth_check = [&](int depth, nlohmann::json::parse_event_t,
                                                            nlohmann::json&) {
    if (depth > limits.max_json_depth) too_deep = true;
    return !too_deep;
  };
  out = nlohmann::json::parse(text, depth_check, false);
  if (too_deep) {
    e.add("", "the body nests deeper than " + std::to_string(limits.max_json_depth) + " levels");
  } else if (out.is_discarded()) {
    e.add("", "the body is not valid JSON");
  }
  return e;
}

std::size_t parse_limit(const httplib::Request& req, std::size_t fallback) {
  if (!req.has_param("limit")) return fallback;
  const std::string text = req.get_param_value("limit");
  std::size_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size()) return fallback;
  return v;
}

}  // namespace

bool unannounced_body(const httplib::Request& req) {
  if (req.has_header("Transfer-Encoding")) return true;
  // The methods whose body cpp-httplib reads (detail::expect_content).
  const bool reads_body = req.method == "POST" || req.method == "PUT" || req.method == "PATCH" ||
                          req.method == "DELETE" || req.method == "PRI";
  return reads_body && !req.has_header("Content-Length");
}

PlaceOrder parse_place_order(const nlohmann::json& body, catga::ValidationErrors& errors) {
  PlaceOrder c;
  if (!body.is_object()) {
    errors.add("", "the body must be a JSON object");
    return c;
  }
  if (!body.contains("customer")) {
    errors.add("customer", "is required");
  } else if (!body["customer"].is_string()) {
    errors.add("customer", "must be a string");
  } else {
    c.customer = body["customer"].get<std::string>();
  }
  if (!body.contains("items")) {
    errors.add("items", "is required");
  } else if (!body["items"].is_array()) {
    errors.add("items", "must be an array");
  } else {
    const auto& items = body["items"];
    for (std::size_t i = 0; i < items.size(); ++i) {
      const std::string field = "items[" + std::to_string(i) + "]";
      const auto& it = items[i];
      if (!it.is_object()) {
        errors.add(field, "must be an object {\"sku\":..,\"qty\":..}");
        continue;
      }
      OrderItem item;
      if (!it.contains("sku") || !it["sku"].is_string()) {
        errors.add(field + ".sku", "must be a string");
      } else {
        item.sku = it["sku"].get<std::string>();
      }
      if (!it.contains("qty") || !it["qty"].is_number_integer()) {
        errors.add(field + ".qty", "must be an integer");
      } else {
        const auto qty = it["qty"].get<std::int64_t>();
        item.qty = qty < 0 ? -1 : qty > 1'000'000 ? 1'000'000 : static_cast<int>(qty);
      }
      c.items.push_back(std::move(item));
    }
  }
  if (!body.contains("amount")) {
    errors.add("amount", "is required");
  } else if (!body["amount"].is_number()) {
    errors.add("amount", "must be a number");
  } else {
    c.amount = body["amount"].get<double>();
  }
  return c;
}

void add_ops_routes(httplib::Server& server, OpsHooks hooks) {
  auto h = std::make_shared<OpsHooks>(std::move(hooks));
  server.Get("/healthz", [h](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"status", "ok"}, {"service", h->service}, {"instance", h->instance}});
  });
  server.Get("/readyz", [h](const httplib::Request&, httplib::Response& res) {
    const std::string why = h->not_ready ? h->not_ready() : std::string();
    if (why.empty()) {
      send_json(res, 200, {{"ready", true}, {"service", h->service}, {"instance", h->instance}});
    } else {
      send_json(res, 503, {{"ready", false}, {"reason", why}, {"service", h->service}, {"instance", h->instance}});
    }
  });
  server.Get("/metrics", [h](const httplib::Request&, httplib::Response& res) {
    res.set_content(h->metrics_text(), "text/plain; version=0.0.4; charset=utf-8");
  });
}

void add_order_routes(httplib::Server& server, OrderService& orders, HttpLimits limits) {
  server.set_payload_max_length(limits.max_body_bytes);
  server.Post("/orders", [&orders, limits](const httplib::Request& req, httplib::Response& res) {
    nlohmann::json body;
    if (auto bad = read_body(req.body, limits, body); !bad.empty()) {
      send_validation(res, bad);
      return;
    }
    catga::ValidationErrors errors;
    PlaceOrder command = parse_place_order(body, errors);
    command.idempotency_key = req.get_header_value("Idempotency-Key");
    if (errors.empty()) validate_place_order(command, errors);
    if (!errors.empty()) {
      send_validation(res, errors);
      return;
    }
    catga::Context ctx = request_context(req);
    set_context_headers(res, ctx);
    auto placed = orders.place(command, ctx);
    if (!placed) {
      send_error(res, placed.error());
      return;
    }
    res.set_header("Location", "/orders/" + placed->order_id);
    if (!placed->created) res.set_header("Idempotent-Replayed", "true");
    send_json(res, 202, {{"order_id", placed->order_id}, {"status", placed->status}});
  });

  server.Get(R"(/orders/([A-Za-z0-9_-]+))", [&orders](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    auto found = orders.find(id);
    if (!found) {
      send_error(res, found.error());
      return;
    }
    if (!*found) {
      send_error(res, catga::make_error(errc::not_found, "no order " + id));
      return;
    }
    nlohmann::json view = order_view(**found);
    if (auto saga = orders.saga(id)) {
      view["saga"] = {{"status", catga::to_string(saga->status)},
                      {"step", saga->step},
                      {"error", saga->error},
                      {"owner", saga->owner}};
    }
    send_json(res, 200, view);
  });

  server.Get("/orders", [&orders](const httplib::Request& req, httplib::Response& res) {
    std::optional<OrderStatus> status;
    if (req.has_param("status")) {
      status = order_status_from(req.get_param_value("status"));
      if (!status) {
        catga::ValidationErrors e;
        e.add("status", "must be one of pending, processing, confirmed, cancelled");
        send_validation(res, e);
        return;
      }
    }
    auto list = orders.list(status, parse_limit(req, 10'000));
    if (!list) {
      send_error(res, list.error());
      return;
    }
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : *list) {
      out.push_back({{"order_id", r.order_id},
                     {"status", to_string(r.status)},
                     {"customer", r.customer},
                     {"items", r.items},
                     {"amount", r.amount},
                     {"reason", r.reason},
                     {"created_at", iso_time(r.created_ms)}});
    }
    send_json(res, 200, {{"count", out.size()}, {"orders", std::move(out)}});
  });

  server.Post(R"(/orders/([A-Za-z0-9_-]+)/cancel)", [&orders, limits](const httplib::Request& req,
                                                                      httplib::Response& res) {
    const std::string id = req.matches[1];
    nlohmann::json body = nlohmann::json::object();
    if (!req.body.empty()) {
      if (auto bad = read_body(req.body, limits, body); !bad.empty()) {
        send_validation(res, bad);
        return;
      }
    }
    catga::ValidationErrors e;
    if (!body.is_object()) e.add("", "the body must be a JSON object");
    if (body.is_object() && body.contains("reason")) {
      if (!body["reason"].is_string()) {
        e.add("reason", "must be a string");
      } else if (body["reason"].get_ref<const std::string&>().size() > limits.max_reason) {
        e.add("reason", "must be at most " + std::to_string(limits.max_reason) + " characters");
      }
    }
    if (body.is_object() && body.contains("actor")) e.add("actor", "is set by the server (customer:<customer>)");
    if (!e.empty()) {
      send_validation(res, e);
      return;
    }
    auto found = orders.find(id);
    if (!found || !*found) {
      send_error(res, found ? catga::make_error(errc::not_found, "no order " + id) : found.error());
      return;
    }
    const std::string reason = body.value("reason", "cancelled on request");
    const std::string actor = "customer:" + (*found)->customer;
    auto s = orders.cancel(id, reason, actor);
    if (!s) {
      send_error(res, s.error());
      return;
    }
    send_json(res, 200, {{"order_id", id}, {"status", "cancelled"}});
  });
}

void add_inventory_routes(httplib::Server& server, InventoryService& inventory) {
  server.Get("/inventory", [&inventory](const httplib::Request&, httplib::Response& res) {
    auto snap = inventory.snapshot();
    if (!snap) {
      send_error(res, snap.error());
      return;
    }
    send_json(res, 200, *snap);
  });
}

void add_payment_routes(httplib::Server& server, PaymentService& payment) {
  server.Get("/payments", [&payment](const httplib::Request&, httplib::Response& res) {
    auto snap = payment.snapshot();
    if (!snap) {
      send_error(res, snap.error());
      return;
    }
    send_json(res, 200, *snap);
  });
}

void add_notification_routes(httplib::Server& server, NotificationService& notification) {
  server.Get("/notifications", [&notification](const httplib::Request&, httplib::Response& res) {
    auto all = notification.notifications();
    if (!all) {
      send_error(res, all.error());
      return;
    }
    nlohmann::json out = nlohmann::json::array();
    for (const auto& n : *all) out.push_back(n);
    send_json(res, 200, {{"count", out.size()}, {"notifications", std::move(out)}});
  });
}

}  // namespace order_flow
