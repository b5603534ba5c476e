#pragma once
// The HTTP side of the services (cpp-httplib): the order API, the
// operations endpoints every service has, and read-only views of the other
// services' state.

#include <catga/pipeline/validation.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <cstddef>
#include <string>

#include "messages.hpp"

namespace httplib {
class Server;
struct Request;
}

namespace order_flow {

class OrderService;
class InventoryService;
class PaymentService;
class NotificationService;

// Reads a POST /orders body. Type errors (a string where a number belongs, a
// missing field) are added to `errors` with the field's path ("items[0].qty");
// value rules are checked by validate_place_order.
PlaceOrder parse_place_order(const nlohmann::json& body, catga::ValidationErrors& errors);

// What the operations endpoints ask the process.
struct OpsHooks {
  std::string service;
  std::string instance;
  // Empty when ready, else why not (NATS down, stream unreachable, ...).
  std::function<std::string()> not_ready;
  // The Prometheus text of /metrics.
  std::function<std::string()> metrics_text;
};

// GET /healthz   200 {"status":"ok",...} while the process runs
// GET /readyz    200 {"ready":true}, or 503 {"ready":false,"reason":"..."}
// GET /metrics   Prometheus text (version 0.0.4)
void add_ops_routes(httplib::Server& server, OpsHooks hooks);

// Limits on what a client may send (HTTP 413 past the body limit, 400 with
// the field otherwise).
//
//   add_order_routes(server, orders, {.max_body_bytes = 16 * 1024});
struct HttpLimits {
  std::size_t max_body_bytes = 64 * 1024;  // request bodies (the whole server)
  int max_json_depth = 8;                  // nesting of arrays/objects in a body
  std::size_t max_reason = 256;            // cancel reason, characters
  // Requests handled at once (threads). An open keep-alive connection holds
  // one of them between its requests, so more clients than threads wait
  // their turn (cpp-httplib's default on 2 cores: 8 threads).
  int threads = 64;
  // Requests served on one keep-alive connection before it is closed
  // (cpp-httplib's default: 5, then the client reconnects and queues again).
  int keep_alive_requests = 1000;
};

// True when `req` carries a body without announcing its size (chunked, or a
// POST/PUT/PATCH/DELETE without Content-Length, read until the client
// closes): cpp-httplib 0.11 would read such a body whole, past any limit,
// so the host refuses it with 411 before it is read.
bool unannounced_body(const httplib::Request& req);

// POST /orders                   202 {"order_id","status":"pending"}; header Idempotency-Key
//                                makes repeats return the same order; 400 names the bad field
// GET  /orders/{id}              the order with its history (404 when unknown)
// GET  /orders?status=&limit=    orders, oldest first
// POST /orders/{id}/cancel       {"reason":"..."} → 200, or 409 when already confirmed; the
//                                history's actor is always customer:<customer> (a client
//                                cannot record itself as the saga or a service)
void add_order_routes(httplib::Server& server, OrderService& orders, HttpLimits limits = {});

// GET /inventory      stock per SKU, reservations, totals
void add_inventory_routes(httplib::Server& server, InventoryService& inventory);
// GET /payments       charges and totals
void add_payment_routes(httplib::Server& server, PaymentService& payment);
// GET /notifications  every notification sent
void add_notification_routes(httplib::Server& server, NotificationService& notification);

}  // namespace order_flow
