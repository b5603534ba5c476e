#pragma once
// Checks shared by the in-process and the end-to-end tests: the business
// invariants of the order flow, computed from what each service reports.

#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace oft {

// Sums over the orders' final states.
struct Ledger {
  long confirmed_qty = 0;
  double confirmed_amount = 0.0;
  int confirmed = 0;
  int cancelled = 0;
  int open = 0;  // neither confirmed nor cancelled
};

// From GET /orders: {"orders":[{"status","amount",...}]} plus each order's items.
inline Ledger ledger_of(const std::vector<nlohmann::json>& orders) {
  Ledger l;
  for (const auto& o : orders) {
    const std::string status = o.value("status", "");
    if (status == "confirmed") {
      ++l.confirmed;
      l.confirmed_amount += o.value("amount", 0.0);
      for (const auto& i : o.value("items", nlohmann::json::array())) l.confirmed_qty += i.value("qty", 0);
    } else if (status == "cancelled") {
      ++l.cancelled;
    } else {
      ++l.open;
    }
  }
  return l;
}

// Initial stock of the default catalog.
inline long initial_stock() { return 5 * 1000; }

// inventory: GET /inventory body; payments: GET /payments body.
// reserved − released = confirmed quantities; stock taken = confirmed
// quantities; charged − refunded = confirmed amounts.
inline void check_invariants(const Ledger& l, const nlohmann::json& inventory, const nlohmann::json& payments) {
  CHECK(l.open == 0);
  const auto& t = inventory.at("totals");
  CHECK(t.at("reserved").get<long>() - t.at("released").get<long>() == l.confirmed_qty);
  long available = 0;
  for (const auto& [sku, level] : inventory.at("stock").items()) available += level.at("available").get<long>();
  CHECK(initial_stock() - available == l.confirmed_qty);
  const auto& p = payments.at("totals");
  CHECK(std::fabs(p.at("charged").get<double>() - p.at("refunded").get<double>() - l.confirmed_amount) < 1e-6);
  // Every reservation of a cancelled order was given back (or never made).
  for (const auto& [order, r] : inventory.at("reservations").items()) {
    const std::string state = r.value("state", "");
    CHECK_MESSAGE((state == "committed" || state == "reserved" || state == "released" || state == "rejected"),
                  order << " is " << state);
  }
}

// True as soon as `pred()` holds; false after `timeout`.
template <class Pred>
bool eventually(Pred&& pred, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace oft
