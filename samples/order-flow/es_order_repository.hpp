#pragma once
// The event-sourced OrderRepository (JetStream event store + SQLite read
// model); built only with catga::eventsourcing (ORDER_FLOW_WITH_ES).

#include <catga/nats/connection.hpp>
#include <catga/nats/options.hpp>
#include <memory>
#include <string>

#include "order_repository.hpp"

namespace order_flow {

// Settings of the event-sourced order repository.
struct EsOrderSettings {
  // Names this replica's projection (its durable consumer and database file).
  std::string instance;
  // Directory of the read model's SQLite file; empty: a fresh temporary
  // directory, removed again by close().
  std::string data_dir;
  // The event store's stream (storage, replicas).
  catga::nats::StreamOptions stream{};
};

// Each order is an aggregate (stream catga.es.Order.<id> on CATGA_ES): update()
// loads it, decides, and appends the events as one commit expecting the
// loaded position (a concurrent writer wins → reload and decide again);
// find() replays the events and builds the history from them (event, actor,
// time); list() reads a SqliteProjection of the orders, waiting first until
// it has caught up with the store (so an order that was just written is
// listed).
//
//   auto repo = order_flow::event_sourced_orders(connection, {.instance = "order-1", .data_dir = "/var/lib/orders"});
//   auto placed = repo.value()->list(OrderStatus::confirmed, 100);
catga::Result<std::shared_ptr<OrderRepository>> event_sourced_orders(std::shared_ptr<catga::nats::Connection> connection,
                                                                     EsOrderSettings settings);

}  // namespace order_flow
