#pragma once
// OrderRepository: where the order service keeps its orders. Two
// implementations: event-sourced on JetStream (catga::eventsourcing, the NATS
// infrastructure) and one KeyValue record per order (in-memory
// infrastructure, which has no event store).

#include <catga/key_value.hpp>
#include <catga/result.hpp>
#include <catga/saga/events.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "messages.hpp"
#include "order_record.hpp"

namespace order_flow {

// The saga began working on the order (recorded, never published).
struct OrderProcessing {
  std::string order_id;
  std::string by;
  std::int64_t at_ms = 0;
};
CATGA_EVENT(OrderProcessing, order_id, by, at_ms)

// Everything that happens to an order, in its own words.
using OrderEvent = std::variant<OrderPlaced, OrderProcessing, InventoryReserved, InventoryReleased, PaymentCharged,
                                PaymentFailed, OrderConfirmed, OrderCancelled, catga::SagaFailed>;

// Folds `e` into the order's state (not its history): the one place that
// says what an event means, used by both repositories and the projection.
void apply_event(OrderRecord& r, const OrderEvent& e);
// The history line of `e` done by `actor` at `fallback_ms` (events that carry
// their own time keep it, so the history stays in the order things happened;
// OrderPlaced is always "customer:<id>", whichever service recorded it).
HistoryEntry order_history_line(const OrderEvent& e, std::string actor, std::int64_t fallback_ms);
// Identifies an event reported by another service, so a redelivery is noted
// once ("" for the order's own events).
std::string noted_key(const OrderEvent& e);

// Given the order as it stands (nullopt: no such order yet), the events to
// record together (none: nothing to do), or an Error (nothing recorded).
using OrderDecision = std::function<catga::Result<std::vector<OrderEvent>>(const std::optional<OrderRecord>&)>;

// Stores orders. update() is safe against concurrent writers of the same
// order (other threads, other replicas): the decision is re-taken on the
// fresh state when someone else wrote first.
//
//   auto r = repo.update(id, "saga:order-1", [](const std::optional<OrderRecord>& o)
//                            -> catga::Result<std::vector<OrderEvent>> {
//     if (!o) return catga::make_error(errc::not_found, "no order");
//     return std::vector<OrderEvent>{OrderConfirmed{o->order_id, o->customer, o->amount, "order-1", now}};
//   });
class OrderRepository {
 public:
  virtual ~OrderRepository() = default;
  // Decides and records, as `actor`; the order after, its history possibly
  // left out (nullopt when there is none).
  virtual catga::Result<std::optional<OrderRecord>> update(const std::string& order_id, const std::string& actor,
                                                           const OrderDecision& decide) = 0;
  // A hint that `order_id` was just made up here and has nothing recorded:
  // the next update() may decide on "no such order" without reading first.
  // A wrong hint costs a conflict and a read, never a lost write (the append
  // still expects an empty stream).
  virtual void expect_new(const std::string& order_id) { (void)order_id; }
  // The order with its full history.
  virtual catga::Result<std::optional<OrderRecord>> find(std::string_view order_id) = 0;
  // Orders (optionally with one status), oldest first, at most `limit`; the
  // history may be left empty.
  virtual catga::Result<std::vector<OrderRecord>> list(std::optional<OrderStatus> status, std::size_t limit) = 0;
  // Counters of the order list's read model ("dead_lettered", "ignored",
  // "repositioned", "applied", "checkpoint"), for /metrics; empty when the
  // list is not a projection.
  virtual std::map<std::string, double> read_model_counters() { return {}; }
  // Stops background work (before the connection it uses closes).
  virtual void close() {}
};

// One JSON record per order ("order.<id>") in `kv`, history inside it.
std::shared_ptr<OrderRepository> kv_order_repository(std::shared_ptr<catga::KeyValue> kv);

}  // namespace order_flow
