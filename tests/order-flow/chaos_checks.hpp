#pragma once
// The invariants of issue 20, checked over a snapshot of what the order-flow
// services report once quiet. A pure function of the snapshot, so a test can
// feed it a fabricated inconsistent one and see it fail.
//
//   ChaosSnapshot s = ...;              // from the HTTP APIs
//   ChaosReport r = check_chaos(s);
//   for (const auto& line : r.lines) std::cout << line << "\n";
//   CHECK(r.violations == 0);

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace oft {

// What the clients saw and what the services report.
struct ChaosSnapshot {
  // Idempotency-Key → every order id a POST with that key was answered with.
  std::map<std::string, std::set<std::string>> key_orders;
  // Keys never answered 202 (the clients gave up) and POSTs answered 4xx.
  std::set<std::string> unanswered_keys;
  std::vector<std::string> refused_posts;  // "key: status body"
  // Orders a customer cancel was answered 200 for.
  std::set<std::string> cancel_acknowledged;
  // GET /orders/<id> of every known order (null: not found).
  std::map<std::string, nlohmann::json> views;
  // GET /orders of each order replica: instance → orders.
  std::map<std::string, std::vector<nlohmann::json>> lists;
  nlohmann::json inventory;                   // GET /inventory
  nlohmann::json payments;                    // GET /payments
  nlohmann::json notifications;               // GET /notifications
  std::map<std::string, long> initial_stock;  // SKU → available before the load
  // Processes that exited without the test killing them, or never became
  // ready again ("instance: why").
  std::vector<std::string> self_exits;
};

struct ChaosReport {
  std::vector<std::string> lines;    // one per invariant, then the summary
  std::vector<std::string> details;  // examples of each violation
  int orders = 0;
  int final_orders = 0;
  int lost = 0;
  int double_applied = 0;
  int violations = 0;
};

namespace chaos_detail {

inline bool is_final(const nlohmann::json& v) {
  if (!v.is_object()) return false;
  const std::string s = v.value("status", "");
  const std::string saga = v.contains("saga") ? v["saga"].value("status", "") : "";
  return (s == "confirmed" || s == "cancelled") && (saga == "completed" || saga == "compensated");
}

// Counts the violations of one invariant and keeps a few examples.
struct Tally {
  int count = 0;
  std::vector<std::string> examples;
  void add(const std::string& what) {
    ++count;
    if (examples.size() < 12) examples.push_back(what);
  }
};

}  // namespace chaos_detail

inline ChaosReport check_chaos(const ChaosSnapshot& s) {
  using chaos_detail::Tally;
  using nlohmann::json;
  ChaosReport r;
  std::vector<std::pair<std::string, Tally>> inv;
  auto tally = [&](const std::string& name) -> Tally& {
    inv.emplace_back(name, Tally{});
    return inv.back().second;
  };

  // Every order anybody knows of: answered to a client or listed.
  std::set<std::string> ids;
  for (const auto& [key, os] : s.key_orders) ids.insert(os.begin(), os.end());
  std::set<std::string> listed;
  for (const auto& [replica, orders] : s.lists) {
    for (const auto& o : orders) listed.insert(o.value("order_id", ""));
  }
  ids.insert(listed.begin(), listed.end());
  r.orders = static_cast<int>(ids.size());
  std::map<std::string, std::string> status;  // id → confirmed/cancelled/other, from the order itself
  for (const auto& id : ids) {
    auto it = s.views.find(id);
    const json v = it == s.views.end() ? json() : it->second;
    status[id] = v.is_object() ? v.value("status", "") : "";
  }

  // 1. Every accepted order ends confirmed or cancelled.
  {
    Tally& t = tally("1 every accepted order ends confirmed or cancelled");
    for (const auto& id : ids) {
      auto it = s.views.find(id);
      if (it == s.views.end() || !it->second.is_object()) {
        ++r.lost;
        t.add(id + " is not found (GET /orders/" + id + ")");
        continue;
      }
      if (!chaos_detail::is_final(it->second)) {
        ++r.lost;
        t.add(id + " is not final: status=" + it->second.value("status", "") +
              " saga=" + (it->second.contains("saga") ? it->second["saga"].dump() : "none"));
        continue;
      }
      ++r.final_orders;
      if (s.cancel_acknowledged.count(id) > 0 && status[id] != "cancelled") {
        ++r.double_applied;
        t.add(id + " was cancelled on request (answered 200) but ended " + status[id]);
      }
    }
    for (const auto& key : s.unanswered_keys) t.add("key " + key + " was never answered 202 (client gave up)");
    for (const auto& p : s.refused_posts) t.add("POST /orders refused: " + p);
  }

  // 2. Each Idempotency-Key maps to exactly one order.
  {
    Tally& t = tally("2 each Idempotency-Key maps to exactly one order");
    std::map<std::string, std::string> key_of;
    for (const auto& [key, os] : s.key_orders) {
      if (os.size() > 1) {
        ++r.double_applied;
        std::string all;
        for (const auto& o : os) all += " " + o;
        t.add("key " + key + " answered with " + std::to_string(os.size()) + " orders:" + all);
      }
      for (const auto& o : os) {
        auto [it, fresh] = key_of.emplace(o, key);
        if (!fresh && it->second != key) t.add("order " + o + " answered for keys " + it->second + " and " + key);
      }
    }
    // Every key was answered: an order no answer named is a second order
    // of some key.
    if (s.unanswered_keys.empty()) {
      for (const auto& id : listed) {
        if (key_of.count(id) == 0) {
          ++r.double_applied;
          t.add("order " + id + " is listed but no POST was answered with it");
        }
      }
    }
  }

  // 3. Stock: initial − available = confirmed quantities per SKU; no hold
  //    left for a final order.
  {
    Tally& t = tally("3 stock: initial - available = confirmed qty per SKU; no hold left");
    std::map<std::string, long> sold;
    for (const auto& id : ids) {
      if (status[id] != "confirmed") continue;
      for (const auto& i : s.views.at(id).value("items", json::array())) sold[i.value("sku", "")] += i.value("qty", 0);
    }
    const json stock = s.inventory.is_object() ? s.inventory.value("stock", json::object()) : json::object();
    if (!s.inventory.is_object()) t.add("no GET /inventory answer");
    for (const auto& [sku, initial] : s.initial_stock) {
      const json level = stock.value(sku, json::object());
      const long available = level.value("available", 0L);
      const long held = level.value("held", 0L);
      if (initial - available != sold[sku]) {
        t.add(sku + ": initial " + std::to_string(initial) + " - available " + std::to_string(available) + " = " +
              std::to_string(initial - available) + ", confirmed qty " + std::to_string(sold[sku]));
      }
      if (held != 0) t.add(sku + ": held " + std::to_string(held) + " with every order final");
    }
    const json reservations =
        s.inventory.is_object() ? s.inventory.value("reservations", json::object()) : json::object();
    for (const auto& id : ids) {
      const std::string st = reservations.contains(id) ? reservations[id].value("state", "") : "";
      if (status[id] == "confirmed" && st != "committed") {
        t.add(id + " is confirmed but its reservation is '" + st + "' (not committed)");
      }
      if (status[id] == "cancelled" && (st == "reserving" || st == "reserved" || st == "committed")) {
        t.add(id + " is cancelled but its reservation is '" + st + "' (not released)");
      }
    }
    for (const auto& [order, res] : reservations.items()) {
      if (ids.count(order) == 0) t.add("reservation of an unknown order " + order + ": " + res.dump());
    }
  }

  // 4. Money: charged − refunded = confirmed amounts; no cancelled order
  //    left charged, every confirmed order charged once with its amount.
  {
    Tally& t = tally("4 money: charged - refunded = confirmed total; no cancelled order left charged");
    double confirmed_total = 0;
    for (const auto& id : ids) {
      if (status[id] == "confirmed") confirmed_total += s.views.at(id).value("amount", 0.0);
    }
    if (!s.payments.is_object()) {
      t.add("no GET /payments answer");
    } else {
      const json totals = s.payments.value("totals", json::object());
      const double net = totals.value("charged", 0.0) - totals.value("refunded", 0.0);
      if (std::fabs(net - confirmed_total) > 1e-6) {
        std::ostringstream m;
        m << "charged " << totals.value("charged", 0.0) << " - refunded " << totals.value("refunded", 0.0) << " = "
          << net << ", confirmed total " << confirmed_total;
        t.add(m.str());
      }
      const json charges = s.payments.value("charges", json::object());
      for (const auto& id : ids) {
        const json c = charges.value(id, json());
        const std::string st = c.is_object() ? c.value("state", "") : "";
        if (status[id] == "confirmed") {
          if (st != "charged") {
            t.add(id + " is confirmed but its charge is '" + st + "'");
          } else if (std::fabs(c.value("amount", 0.0) - s.views.at(id).value("amount", 0.0)) > 1e-6) {
            t.add(id + " was charged " + c.dump() + " for an order of " + s.views.at(id)["amount"].dump());
          }
        }
        if (status[id] == "cancelled" && st == "charged") {
          t.add(id + " is cancelled but left charged (" + c.value("amount", json(0.0)).dump() + ", by " +
                c.value("by", "") + ")");
        }
      }
      for (const auto& [order, c] : charges.items()) {
        if (ids.count(order) == 0 && c.value("charged", false)) t.add("charge for an unknown order " + order);
      }
    }
  }

  // 5. One terminal event in each history and nothing after it but the
  //    running step's outcome and its compensation; exactly one
  //    notification per final order, of its outcome.
  {
    Tally& t = tally("5 one terminal event per history, nothing after it; one notification per final order");
    static const std::set<std::string> kAfterCancel = {"InventoryReserved", "InventoryReleased", "PaymentCharged",
                                                       "PaymentFailed"};
    for (const auto& id : ids) {
      auto it = s.views.find(id);
      if (it == s.views.end() || !it->second.is_object()) continue;
      const json history = it->second.value("history", json::array());
      int terminals = 0;
      std::string terminal;
      std::vector<std::string> after;
      for (const auto& h : history) {
        const std::string e = h.value("event", "");
        if (e == "OrderConfirmed" || e == "OrderCancelled") {
          ++terminals;
          if (terminal.empty()) {
            terminal = e;
            continue;
          }
        }
        if (!terminal.empty() && !(terminal == "OrderCancelled" && kAfterCancel.count(e) > 0)) after.push_back(e);
      }
      if (chaos_detail::is_final(it->second) && terminals != 1) {
        if (terminals > 1) ++r.double_applied;
        t.add(id + " has " + std::to_string(terminals) + " terminal events (status " + status[id] + ")");
      }
      if (!after.empty()) {
        std::string list;
        for (const auto& e : after) list += " " + e;
        t.add(id + " has events after " + terminal + ":" + list);
      }
      const std::string expected = status[id] == "confirmed" ? "OrderConfirmed" : "OrderCancelled";
      if (!terminal.empty() && terminal != expected)
        t.add(id + " is " + status[id] + " but its history ends " + terminal);
    }
    std::map<std::string, std::vector<std::string>> notes;
    if (!s.notifications.is_object()) t.add("no GET /notifications answer");
    for (const auto& n : s.notifications.value("notifications", json::array())) {
      notes[n.value("order_id", "")].push_back(n.value("event", ""));
    }
    for (const auto& id : ids) {
      if (status[id] != "confirmed" && status[id] != "cancelled") continue;
      const auto& got = notes[id];
      const std::string expected = status[id] == "confirmed" ? "OrderConfirmed" : "OrderCancelled";
      if (got.size() != 1 || got[0] != expected) {
        std::string list;
        for (const auto& e : got) list += " " + e;
        if (got.size() > 1) ++r.double_applied;
        t.add(id + " (" + status[id] + ") was notified " + std::to_string(got.size()) + " times:" + list);
      }
    }
    for (const auto& [id, got] : notes) {
      if (ids.count(id) == 0) t.add("notification for an unknown order " + id);
    }
  }

  // 6. No process exited by itself.
  {
    Tally& t = tally("6 no service process exited by itself; every one ready again");
    for (const auto& e : s.self_exits) t.add(e);
  }

  // 7. The read model agrees with each order's own state.
  {
    Tally& t = tally("7 GET /orders agrees with each order's own state");
    for (const auto& [replica, orders] : s.lists) {
      std::map<std::string, std::string> list_status;
      for (const auto& o : orders) list_status[o.value("order_id", "")] = o.value("status", "");
      for (const auto& id : ids) {
        auto it = list_status.find(id);
        if (it == list_status.end()) {
          t.add(replica + ": " + id + " (" + status[id] + ") is missing from GET /orders");
        } else if (it->second != status[id]) {
          t.add(replica + ": " + id + " is listed " + it->second + " but is " + status[id]);
        }
      }
    }
  }

  for (const auto& [name, t] : inv) {
    r.violations += t.count;
    r.lines.push_back("chaos single: invariant " + name + ": " +
                      (t.count == 0 ? std::string("OK") : "FAIL (" + std::to_string(t.count) + ")"));
    for (const auto& e : t.examples) r.details.push_back("  [" + name.substr(0, 1) + "] " + e);
  }
  r.lines.push_back("chaos single: orders=" + std::to_string(r.orders) + " final=" + std::to_string(r.final_orders) +
                    " lost=" + std::to_string(r.lost) + " double_applied=" + std::to_string(r.double_applied) +
                    " violations=" + std::to_string(r.violations));
  return r;
}

}  // namespace oft
