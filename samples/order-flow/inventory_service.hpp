#pragma once
// InventoryService: stock per SKU and reservations per order, in the
// "inventory" KeyValue bucket shared by every replica.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "messages.hpp"
#include "service_core.hpp"

namespace order_flow {

// The catalog the first inventory instance seeds (later starts keep the
// stock as it is): A-1 .. A-5 with 1,000 each, and SOLDOUT-1 with none.
std::vector<std::pair<std::string, int>> default_catalog();

// Stock of one SKU as reported by snapshot().
struct StockLevel {
  int available = 0;
  int held = 0;  // held for orders that are not confirmed or released yet
};

// Totals over every reservation record (consistency checks, the demo):
// reserved − released = quantity still held or committed.
struct InventoryTotals {
  long reserved = 0;   // quantity that reached "reserved"
  long released = 0;   // of that, given back
  long committed = 0;  // of that, consumed by confirmed orders
};

// Handles ReserveInventory and ReleaseInventory (queue group "inventory")
// and consumes OrderConfirmed (group "inventory") to turn the order's hold
// into a sale. Keys of the bucket:
//   stock.<sku>        {"available":998,"holds":{"<order>":2}}
//   reservation.<id>   {"state":"reserving|reserved|committed|rejected|released",...}
// A hold is taken and given back in the same revision-checked write as the
// stock count, keyed by order, so repeating a reserve or a release never
// counts twice, whichever replica handles it.
//
//   order_flow::InventoryService inventory(env);
//   inventory.start().value();
class InventoryService final : public ServiceCore {
 public:
  explicit InventoryService(ServiceEnv env, std::vector<std::pair<std::string, int>> catalog = default_catalog());

  // Opens the bucket, seeds the catalog (create-if-absent), starts serving.
  catga::Status start();

  catga::Result<Reservation> reserve(const ReserveInventory& c);
  catga::Status release(const ReleaseInventory& c);
  // The order was confirmed: its held stock is sold.
  catga::Status commit(const OrderConfirmed& e);

  catga::Result<std::map<std::string, StockLevel>> stock();
  catga::Result<InventoryTotals> totals();
  // Everything in the bucket, for GET /inventory.
  catga::Result<nlohmann::json> snapshot();

 private:
  catga::Status seed();
  // Takes (or gives back) the hold of `order` on one SKU; idempotent.
  catga::Status take_hold(const std::string& order, const OrderItem& item);
  catga::Status drop_hold(const std::string& order, const std::string& sku, bool restock);
  catga::Status drop_holds(const std::string& order, const std::vector<OrderItem>& items, bool restock);
  catga::Status announce_reserved(const std::string& order, const std::vector<OrderItem>& items);

  std::vector<std::pair<std::string, int>> catalog_;
  std::shared_ptr<catga::KeyValue> kv_;
};

}  // namespace order_flow
