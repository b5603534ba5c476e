#include "inventory_service.hpp"

#include <spdlog/logger.h>
#include <catga/saga/record.hpp>
#include <optional>

#include "kv_json.hpp"

namespace order_flow {
namespace {

constexpr std::string_view kBucket = "inventory";

std::string stock_key(std::string_view sku) { return "stock." + key_token(sku); }
std::string reservation_key(std::string_view order) { return "reservation." + key_token(order); }

// One line per SKU (an order may name a SKU twice), sorted by SKU.
std::vector<OrderItem> merged(const std::vector<OrderItem>& items) {
  std::map<std::string, int> by_sku;
  for (const auto& i : items) by_sku[i.sku] += i.qty;
  std::vector<OrderItem> out;
  for (auto& [sku, qty] : by_sku) out.push_back({sku, qty});
  return out;
}

int quantity(const std::vector<OrderItem>& items) {
  int n = 0;
  for (const auto& i : items) n += i.qty;
  return n;
}

std::string describe(const std::vector<OrderItem>& items) {
  std::string s;
  for (const auto& i : items) {
    if (!s.empty()) s += ",";
    s += i.sku + "x" + std::to_string(i.qty);
  }
  return s;
}

}  // namespace

std::vector<std::pair<std::string, int>> default_catalog() {
  return {{"A-1", 1000}, {"A-2", 1000}, {"A-3", 1000}, {"A-4", 1000}, {"A-5", 1000}, {"SOLDOUT-1", 0}};
}

InventoryService::InventoryService(ServiceEnv env, std::vector<std::pair<std::string, int>> catalog)
    : ServiceCore("inventory", std::move(env)), catalog_(std::move(catalog)) {
  handle<ReserveInventory>([this](const ReserveInventory& c, catga::Context& ctx) -> catga::Result<Reservation> {
    auto r = reserve(c);
    if (r) {
      log().info("reserved order={} items={} {}", c.order_id, describe(c.items), log_ids(ctx));
    } else {
      log().info("not reserved order={} code={} reason=\"{}\" {}", c.order_id, r.error().code, r.error().message,
                 log_ids(ctx));
    }
    return r;
  });
  handle<ReleaseInventory>([this](const ReleaseInventory& c, catga::Context& ctx) -> catga::Status {
    auto s = release(c);
    if (s) log().info("released order={} {}", c.order_id, log_ids(ctx));
    return s;
  });
  consume<OrderConfirmed>("inventory", [this](const OrderConfirmed& e) -> catga::Status { return commit(e); });
}

catga::Status InventoryService::start() {
  auto kv = bucket(kBucket);
  if (!kv) return std::move(kv).error();
  kv_ = std::move(*kv);
  if (auto s = seed(); !s) return s;
  return open();
}

catga::Status InventoryService::seed() {
  int created = 0;
  for (const auto& [sku, qty] : catalog_) {
    auto r = create_json(*kv_, stock_key(sku), {{"sku", sku}, {"available", qty}, {"holds", nlohmann::json::object()}});
    if (!r) return std::move(r).error();
    created += r->created ? 1 : 0;
  }
  if (created > 0) log().info("seeded catalog skus={}", created);
  return {};
}

catga::Status InventoryService::take_hold(const std::string& order, const OrderItem& item) {
  // [snippet:order-flow-take-hold]
  auto r = modify_json(*kv_, stock_key(item.sku), [&](nlohmann::json& s) -> catga::Result<Write> {
    if (s.is_null()) return catga::make_error(errc::unknown_sku, "unknown sku '" + item.sku + "'");
    auto& holds = s["holds"];
    if (holds.contains(order)) return Write::no;  // taken by an earlier attempt
    const int available = s.at("available").get<int>();
    if (available < item.qty) {
      return catga::make_error(errc::out_of_stock, "sku " + item.sku + ": " + std::to_string(available) +
                                                       " available, " + std::to_string(item.qty) + " requested");
    }
    s["available"] = available - item.qty;
    holds[order] = item.qty;
    return Write::yes;
  });
  // [/snippet:order-flow-take-hold]
  if (!r) return std::move(r).error();
  return {};
}

catga::Status InventoryService::drop_hold(const std::string& order, const std::string& sku, bool restock) {
  auto r = modify_json(*kv_, stock_key(sku), [&](nlohmann::json& s) -> catga::Result<Write> {
    if (s.is_null() || !s["holds"].contains(order)) return Write::no;
    const int qty = s["holds"][order].get<int>();
    s["holds"].erase(order);
    if (restock) s["available"] = s.at("available").get<int>() + qty;
    return Write::yes;
  });
  if (!r) return std::move(r).error();
  return {};
}

catga::Status InventoryService::drop_holds(const std::string& order, const std::vector<OrderItem>& items,
                                           bool restock) {
  for (const auto& i : items) {
    if (auto s = drop_hold(order, i.sku, restock); !s) return s;
  }
  return {};
}

// A failed publish fails the reservation (retryable): the saga sends it
// again, the repeat finds it reserved and publishes again.
catga::Status InventoryService::announce_reserved(const std::string& order, const std::vector<OrderItem>& items) {
  return publish_once(InventoryReserved{order, items, instance(), catga::unix_ms_now()}, order + ".reserved");
}

// reserving → (every hold taken) → reserved, or → rejected with the holds
// given back. A release that lands meanwhile wins: the reserve then gives
// back what it took and fails with reservation_released.
catga::Result<Reservation> InventoryService::reserve(const ReserveInventory& c) {
  const std::string key = reservation_key(c.order_id);
  const nlohmann::json initial = {{"order_id", c.order_id}, {"items", merged(c.items)},
                                  {"state", "reserving"},   {"by", instance()},
                                  {"error_code", ""},       {"reason", ""},
                                  {"released_from", ""},    {"updated_ms", catga::unix_ms_now()}};
  auto rec = create_json(*kv_, key, initial);
  if (!rec) return std::move(rec).error();
  const nlohmann::json& doc = rec->entry.value;
  const auto items = doc.at("items").get<std::vector<OrderItem>>();
  const std::string state = doc.at("state").get<std::string>();
  if (state == "reserved" || state == "committed") {
    // In case the first attempt died before it did.
    if (auto s = announce_reserved(c.order_id, items); !s) return std::move(s).error();
    return Reservation{c.order_id, doc.at("by").get<std::string>()};
  }
  if (state == "rejected") {
    return catga::make_error(doc.at("error_code").get<std::string>(), doc.at("reason").get<std::string>());
  }
  if (state == "released") {
    return catga::make_error(errc::reservation_released,
                             "order " + c.order_id + " was released before it was reserved");
  }

  // "reserving": ours, or left by an attempt that died half way (holds are
  // per order, so taking them again is harmless). The outcome is decided by
  // one revision-checked write of the record; holds are given back only by
  // whoever sees a final state other than reserved, after seeing it, so
  // attempts racing on one order (a retry while the first still runs)
  // cannot lose or leak a hold.
  std::optional<catga::Error> failure;
  for (const auto& item : items) {
    auto taken = take_hold(c.order_id, item);
    if (taken) continue;
    if (taken.error().retryable) return std::move(taken).error();  // stays "reserving": the next attempt carries on
    failure = std::move(taken).error();
    break;
  }
  auto decided = modify_json(*kv_, key, [&](nlohmann::json& d) -> catga::Result<Write> {
    if (d.is_null() || d.at("state") != "reserving") return Write::no;
    d["state"] = failure ? "rejected" : "reserved";
    if (failure) {
      d["error_code"] = failure->code;
      d["reason"] = failure->message;
    } else {
      d["by"] = instance();
    }
    d["updated_ms"] = catga::unix_ms_now();
    return Write::yes;
  });
  if (!decided) return std::move(decided).error();
  const std::string now_state = decided->value("state", "");
  if (now_state == "reserved" || now_state == "committed") {
    if (auto s = announce_reserved(c.order_id, items); !s) return std::move(s).error();
    return Reservation{c.order_id, decided->value("by", instance())};
  }
  if (auto s = drop_holds(c.order_id, items, true); !s) return s.error();
  if (now_state == "rejected") {
    return catga::make_error(decided->value("error_code", std::string(errc::out_of_stock)),
                             decided->value("reason", ""));
  }
  return catga::make_error(errc::reservation_released, "order " + c.order_id + " was released while reserving");
}

catga::Status InventoryService::release(const ReleaseInventory& c) {
  const std::string key = reservation_key(c.order_id);
  auto rec = modify_json(*kv_, key, [&](nlohmann::json& d) -> catga::Result<Write> {
    const auto now = catga::unix_ms_now();
    if (d.is_null()) {
      // Nothing reserved: leave a marker so a late ReserveInventory refuses.
      d = {{"order_id", c.order_id},  {"items", nlohmann::json::array()},
           {"state", "released"},     {"by", instance()},
           {"error_code", ""},        {"reason", c.reason},
           {"released_from", "none"}, {"updated_ms", now}};
      return Write::yes;
    }
    const std::string state = d.at("state").get<std::string>();
    if (state == "released" || state == "rejected") return Write::no;
    if (state == "committed") {
      return catga::make_error(errc::reservation_committed,
                               "order " + c.order_id + " is confirmed; its stock cannot be released");
    }
    d["released_from"] = state;
    d["state"] = "released";
    d["reason"] = c.reason;
    d["updated_ms"] = now;
    return Write::yes;
  });
  if (!rec) return std::move(rec).error();
  const auto items = rec->at("items").get<std::vector<OrderItem>>();
  // Always: a release repeated after a crash finishes what the first began.
  if (auto s = drop_holds(c.order_id, items, true); !s) return s;
  if (rec->value("released_from", "") == "reserved") {
    // A failed publish fails the release (retryable); the repeat publishes again.
    return publish_once(InventoryReleased{c.order_id, items, c.reason, instance(), catga::unix_ms_now()},
                        c.order_id + ".released");
  }
  return {};
}

catga::Status InventoryService::commit(const OrderConfirmed& e) {
  auto rec = modify_json(*kv_, reservation_key(e.order_id), [&](nlohmann::json& d) -> catga::Result<Write> {
    if (d.is_null() || d.at("state") != "reserved") return Write::no;
    d["state"] = "committed";
    d["updated_ms"] = catga::unix_ms_now();
    return Write::yes;
  });
  if (!rec) return std::move(rec).error();
  if (rec->is_null()) {
    log().warn("order={} confirmed without a reservation", e.order_id);
    return {};
  }
  if (rec->at("state") != "committed") return {};
  // The sale keeps the stock count as it is; only the hold goes.
  return drop_holds(e.order_id, rec->at("items").get<std::vector<OrderItem>>(), false);
}

catga::Result<std::map<std::string, StockLevel>> InventoryService::stock() {
  auto keys = kv_->keys("stock.");
  if (!keys) return std::move(keys).error();
  std::map<std::string, StockLevel> out;
  for (const auto& k : *keys) {
    auto doc = load_json(*kv_, k);
    if (!doc) return std::move(doc).error();
    if (!*doc) continue;
    const auto& s = (*doc)->value;
    StockLevel level;
    level.available = s.value("available", 0);
    const nlohmann::json holds = s.value("holds", nlohmann::json::object());
    for (const auto& [order, qty] : holds.items()) level.held += qty.get<int>();
    out[s.value("sku", k.substr(6))] = level;
  }
  return out;
}

catga::Result<InventoryTotals> InventoryService::totals() {
  auto keys = kv_->keys("reservation.");
  if (!keys) return std::move(keys).error();
  InventoryTotals t;
  for (const auto& k : *keys) {
    auto doc = load_json(*kv_, k);
    if (!doc) return std::move(doc).error();
    if (!*doc) continue;
    const auto& d = (*doc)->value;
    const long qty = quantity(d.at("items").get<std::vector<OrderItem>>());
    const std::string state = d.value("state", "");
    if (state == "reserved") t.reserved += qty;
    if (state == "committed") {
      t.reserved += qty;
      t.committed += qty;
    }
    if (state == "released" && d.value("released_from", "") == "reserved") {
      t.reserved += qty;
      t.released += qty;
    }
  }
  return t;
}

catga::Result<nlohmann::json> InventoryService::snapshot() {
  auto levels = stock();
  if (!levels) return std::move(levels).error();
  auto t = totals();
  if (!t) return std::move(t).error();
  nlohmann::json out;
  out["stock"] = nlohmann::json::object();
  for (const auto& [sku, level] : *levels) out["stock"][sku] = {{"available", level.available}, {"held", level.held}};
  auto keys = kv_->keys("reservation.");
  if (!keys) return std::move(keys).error();
  out["reservations"] = nlohmann::json::object();
  for (const auto& k : *keys) {
    auto doc = load_json(*kv_, k);
    if (doc && *doc) {
      const auto& d = (*doc)->value;
      out["reservations"][d.value("order_id", k)] = {{"state", d.value("state", "")},
                                                     {"items", d.value("items", nlohmann::json::array())},
                                                     {"by", d.value("by", "")}};
    }
  }
  out["totals"] = {{"reserved", t->reserved}, {"released", t->released}, {"committed", t->committed}};
  return out;
}

}  // namespace order_flow
