#pragma once
// The invariants of issue 20, checked over a snapshot of what the order-flow
// services report once quiet and of what the streams hold (the event
// store's commits, the published terminal events). A pure function of the
// snapshot, so a test can feed it a fabricated inconsistent one and see it
// fail.
//
//   ChaosSnapshot s = ...;              // from the HTTP APIs
//   ChaosReport r = check_chaos(s, "single");   // "chaos single: ..." lines
//   for (const auto& line : r.lines) std::cout << line << "\n";
//   CHECK(r.violations == 0);

#include <cmath>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace oft {

// One message of a stream, as stored.
struct StreamMessage {
  std::uint64_t seq = 0;
  std::string subject;
  nlohmann::json body;
};

// What the clients saw, what the services report and what the streams hold.
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
  // Read from the streams on their leaders, not through the services, in
  // stream order: every commit of an order in the event store's stream
  // (body {"stream":"Order.<id>","events":[{"type","version",...}]}) and
  // every OrderConfirmed/OrderCancelled in the events' stream. When not
  // read (streams_read false, no streams_error) the stream checks are left
  // out; a read that failed is a violation.
  bool streams_read = false;
  std::string streams_error;
  std::vector<StreamMessage> order_commits;
  std::vector<StreamMessage> terminal_events;
};

struct ChaosReport {
  std::vector<std::string> lines;    // one per invariant, then the summary
  std::vector<std::string> details;  // examples of each violation
  int orders = 0;
  int final_orders = 0;
  int lost = 0;
  int double_applied = 0;
  int violations = 0;
  int ignored_commits = 0;  // commits the event store's read rule ignores (a version claimed twice)
};

namespace chaos_detail {

inline bool is_terminal(const std::string& event) { return event == "OrderConfirmed" || event == "OrderCancelled"; }

// The last dot-separated part of an event type ("order_flow.OrderPlaced" → "OrderPlaced").
inline std::string short_type(const std::string& type) {
  const auto dot = type.rfind('.');
  return dot == std::string::npos ? type : type.substr(dot + 1);
}

inline bool is_final(const nlohmann::json& v) {
  if (!v.is_object()) return false;
  const std::string s = v.value("status", "");
  // "saga" is null when the service could not read the saga record.
  const std::string saga = v.contains("saga") && v["saga"].is_object() ? v["saga"].value("status", "") : "";
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

// `mode` names the run in the lines ("single", "cluster", ...).
inline ChaosReport check_chaos(const ChaosSnapshot& s, const std::string& mode = "single") {
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
  //    notification per final order, of its outcome. The history as the
  //    order service shows it (in time order), and as the event store's
  //    stream holds it (read rule of docs/event-sourcing.md: a commit whose
  //    first version is not above the last kept one is ignored), and the
  //    terminal event published for every final order.
  {
    Tally& t = tally("5 one terminal event per history, nothing after it; one notification per final order");
    // `events` of order `id` (type, at_ms; -1: time unknown) in the order
    // `where` holds them. After the terminal event only what other services
    // did may follow (the order notes it when their event arrives): after
    // a cancellation the running step's outcome and its compensation, and
    // anything that happened before the terminal event but was noted later.
    auto check_history = [&](const std::string& id, const std::vector<std::pair<std::string, std::int64_t>>& events,
                             bool final_order, const std::string& where) {
      static const std::set<std::string> kNotes = {"InventoryReserved", "InventoryReleased", "PaymentCharged",
                                                   "PaymentFailed"};
      int terminals = 0;
      std::string terminal;
      std::int64_t terminal_at = -1;
      std::vector<std::string> after;
      for (const auto& [e, at] : events) {
        if (chaos_detail::is_terminal(e)) {
          ++terminals;
          if (terminal.empty()) {
            terminal = e;
            terminal_at = at;
            continue;
          }
        }
        if (terminal.empty()) continue;
        const bool noted_late = at >= 0 && terminal_at >= 0 && at <= terminal_at;
        if (kNotes.count(e) > 0 && (terminal == "OrderCancelled" || noted_late)) continue;
        after.push_back(e);
      }
      if (final_order && terminals != 1) {
        if (terminals > 1) ++r.double_applied;
        t.add(where + id + " has " + std::to_string(terminals) + " terminal events (status " + status[id] + ")");
      }
      if (!after.empty()) {
        std::string list;
        for (const auto& e : after) list += " " + e;
        t.add(where + id + " has events after " + terminal + ":" + list);
      }
      const std::string expected = status[id] == "confirmed" ? "OrderConfirmed" : "OrderCancelled";
      if (!terminal.empty() && terminal != expected)
        t.add(where + id + " is " + status[id] + " but its history ends " + terminal);
    };
    for (const auto& id : ids) {
      auto it = s.views.find(id);
      if (it == s.views.end() || !it->second.is_object()) continue;
      std::vector<std::pair<std::string, std::int64_t>> events;
      for (const auto& h : it->second.value("history", json::array())) events.emplace_back(h.value("event", ""), -1);
      check_history(id, events, chaos_detail::is_final(it->second), "");
    }
    if (!s.streams_error.empty()) t.add("the streams could not be read: " + s.streams_error);
    if (s.streams_read) {
      std::map<std::string, std::vector<const StreamMessage*>> commits;
      for (const auto& m : s.order_commits) {
        const std::string stream = m.body.is_object() ? m.body.value("stream", "") : "";
        if (stream.rfind("Order.", 0) != 0) {
          t.add("[stream] commit #" + std::to_string(m.seq) + " on " + m.subject + " is not an order's");
          continue;
        }
        commits[stream.substr(6)].push_back(&m);
      }
      for (const auto& [id, list] : commits) {
        std::vector<std::pair<std::string, std::int64_t>> events;
        long kept = 0;
        for (const StreamMessage* m : list) {
          const json evs = m->body.value("events", json::array());
          if (evs.empty() || evs.front().value("version", 0L) <= kept) {
            ++r.ignored_commits;
            std::string types;
            for (const auto& e : evs) types += " " + chaos_detail::short_type(e.value("type", ""));
            // Not a violation by itself (readers ignore it); what it did
            // shows in the other invariants.
            r.details.push_back("  [stream] " + id + ": commit #" + std::to_string(m->seq) +
                                " claims a version already kept, ignored by readers:" + types);
            continue;
          }
          for (const auto& e : evs) {
            const json data = e.value("data", json::object());
            events.emplace_back(chaos_detail::short_type(e.value("type", "")),
                                data.is_object() ? data.value("at_ms", std::int64_t{-1}) : std::int64_t{-1});
          }
          kept = evs.back().value("version", 0L);
        }
        if (ids.count(id) == 0) {
          t.add("[stream] " + id + " has commits in the event store but no client or list knows it");
          continue;
        }
        check_history(id, events, status[id] == "confirmed" || status[id] == "cancelled", "[stream] ");
      }
      std::map<std::string, std::set<std::string>> published;  // id → terminal event types
      for (const auto& m : s.terminal_events) {
        // catga.evt.<Type>.<partition>
        const std::string type = m.subject.substr(std::string_view("catga.evt.").size());
        published[m.body.value("order_id", "")].insert(type.substr(0, type.find('.')));
      }
      for (const auto& id : ids) {
        if (status[id] != "confirmed" && status[id] != "cancelled") continue;
        if (commits.count(id) == 0) t.add("[stream] " + id + " (" + status[id] + ") has no commit in the event store");
        const std::string expected = status[id] == "confirmed" ? "OrderConfirmed" : "OrderCancelled";
        const auto& got = published[id];
        if (got.count(expected) == 0) t.add("[stream] no " + expected + " of " + id + " was published");
        if (got.size() > 1) {
          ++r.double_applied;
          t.add("[stream] both OrderConfirmed and OrderCancelled of " + id + " were published");
        }
      }
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
    r.lines.push_back("chaos " + mode + ": invariant " + name + ": " +
                      (t.count == 0 ? std::string("OK") : "FAIL (" + std::to_string(t.count) + ")"));
    for (const auto& e : t.examples) r.details.push_back("  [" + name.substr(0, 1) + "] " + e);
  }
  if (s.streams_read) {
    r.lines.push_back("chaos " + mode + ": streams read: order commits=" + std::to_string(s.order_commits.size()) +
                      " (ignored by the read rule: " + std::to_string(r.ignored_commits) +
                      ") terminal events published=" + std::to_string(s.terminal_events.size()));
  }
  r.lines.push_back("chaos " + mode + ": orders=" + std::to_string(r.orders) + " final=" + std::to_string(r.final_orders) +
                    " lost=" + std::to_string(r.lost) + " double_applied=" + std::to_string(r.double_applied) +
                    " violations=" + std::to_string(r.violations));
  return r;
}

}  // namespace oft
