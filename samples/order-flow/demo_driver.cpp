#include "demo_driver.hpp"

#include <httplib.h>

#include <spdlog/fmt/fmt.h>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <ostream>
#include <regex>
#include <set>
#include <thread>

#include "order_record.hpp"

namespace order_flow {
namespace {

using Clock = std::chrono::steady_clock;

// One order of the batch and what became of it.
struct Planned {
  nlohmann::json body;
  std::string key;
  std::string expect;  // "confirmed", "payment_declined" or "out_of_stock"
  bool post_twice = false;
  std::string order_id;
  std::string post_error;
  bool duplicate_mismatch = false;
  std::string status = "unknown";
  std::string reason;
  std::int64_t completion_ms = -1;
  nlohmann::json view;
};

Planned plan(int i, const std::string& run) {
  static const std::vector<std::pair<std::string, double>> kPrices = {
      {"A-1", 10.0}, {"A-2", 12.5}, {"A-3", 15.0}, {"A-4", 20.0}, {"A-5", 25.0}};
  Planned p;
  p.key = "demo-" + run + "-" + std::to_string(i);
  p.post_twice = i % 7 == 5;
  std::string customer = "c" + std::to_string(1 + i % 9);
  nlohmann::json items = nlohmann::json::array();
  double amount = 0.0;
  const int lines = 1 + i % 2;
  for (int l = 0; l < lines; ++l) {
    const auto& [sku, price] = kPrices[static_cast<std::size_t>((i + 2 * l) % 5)];
    const int qty = 1 + (i + l) % 3;
    items.push_back({{"sku", sku}, {"qty", qty}});
    amount += qty * price;
  }
  p.expect = "confirmed";
  switch (i % 10) {
    case 3:
      customer = "declined";
      p.expect = "payment_declined";
      break;
    case 6:
      amount = 750.0;  // over the default limit of 500
      p.expect = "payment_declined";
      break;
    case 8:
      items.push_back({{"sku", "SOLDOUT-1"}, {"qty", 1}});
      p.expect = "out_of_stock";
      break;
    default:
      break;
  }
  p.body = {{"customer", customer}, {"items", items}, {"amount", amount}};
  return p;
}

bool ended_as_designed(const Planned& p) {
  if (p.expect == "confirmed") return p.status == "confirmed";
  return p.status == "cancelled" && p.reason.find(p.expect) != std::string::npos;
}

std::unique_ptr<httplib::Client> client(const std::string& url) {
  auto c = std::make_unique<httplib::Client>(url);
  c->set_connection_timeout(std::chrono::seconds(5));
  c->set_read_timeout(std::chrono::seconds(30));
  c->set_tcp_nodelay(true);  // a POST's body would wait for the ACK of its headers (Nagle)
  return c;
}

// order_flow_handled_total lines of a /metrics text: instance → type → count.
void add_handled(const std::string& text, std::map<std::string, std::map<std::string, double>>& out) {
  static const std::regex kLabel(R"re((\w+)="([^"]*)")re");
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.rfind("order_flow_handled_total{", 0) != 0) continue;
    const auto close = line.find('}');
    if (close == std::string::npos) continue;
    const std::string labels = line.substr(0, close);
    std::map<std::string, std::string> l;
    for (std::sregex_iterator it(labels.begin(), labels.end(), kLabel), e; it != e; ++it) l[(*it)[1]] = (*it)[2];
    out[l["instance"]][l["type"]] += std::stod(line.substr(close + 1));
  }
}

// The sample's events (messages.hpp); every other handled type is a command.
bool is_event(const std::string& type) {
  static const std::set<std::string> kEvents = {"OrderPlaced",    "InventoryReserved", "InventoryReleased",
                                                "PaymentCharged", "PaymentFailed",     "OrderConfirmed",
                                                "OrderCancelled"};
  return kEvents.count(type) > 0;
}

std::int64_t percentile(std::vector<std::int64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(std::max(0.0, std::ceil(p / 100.0 * static_cast<double>(v.size())) - 1));
  return v[std::min(rank, v.size() - 1)];
}

}  // namespace

int run_demo(const DemoSettings& s, std::ostream& out) {
  const std::string run = std::to_string(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  std::vector<Planned> orders;
  for (int i = 0; i < s.orders; ++i) orders.push_back(plan(i, run));

  {
    std::map<std::string, int> designed;
    int twice = 0;
    for (const auto& p : orders) {
      if (p.body.value("customer", "") == "declined") {
        designed["from customer 'declined'"]++;
      } else if (p.expect == "payment_declined") {
        designed["over the customer's limit"]++;
      } else if (p.expect == "out_of_stock") {
        designed["with the sold-out SKU SOLDOUT-1"]++;
      }
      twice += p.post_twice ? 1 : 0;
    }
    out << "Placing " << s.orders << " orders on " << s.order_url << " (" << s.concurrency << " clients)\n";
    std::string failing;
    for (const auto& [what, n] : designed) failing += fmt::format("{}{} {}", failing.empty() ? "" : ", ", n, what);
    if (!failing.empty()) out << "  designed to be cancelled: " << failing << "\n";
    out << "  sent twice with the same Idempotency-Key: " << twice << "\n";
  }
  std::mutex mutex;  // guards `orders` results written by the clients
  std::atomic<int> next{0};
  std::atomic<int> placed{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < std::max(1, s.concurrency); ++c) {
    clients.emplace_back([&] {
      auto http = client(s.order_url);
      for (int i = next++; i < s.orders; i = next++) {
        Planned& p = orders[static_cast<std::size_t>(i)];
        const httplib::Headers headers = {{"Idempotency-Key", p.key}};
        const int posts = p.post_twice ? 2 : 1;
        for (int n = 0; n < posts; ++n) {
          auto res = http->Post("/orders", headers, p.body.dump(), "application/json");
          std::lock_guard lock(mutex);
          if (!res || res->status != 202) {
            p.post_error = res ? std::to_string(res->status) + " " + res->body : httplib::to_string(res.error());
            break;
          }
          const auto id = nlohmann::json::parse(res->body, nullptr, false).value("order_id", "");
          if (n == 0) p.order_id = id;
          if (n == 1 && id != p.order_id) p.duplicate_mismatch = true;
        }
        ++placed;
      }
    });
  }

  // Follow every order until it is confirmed or cancelled.
  auto http = client(s.order_url);
  const auto deadline = t0 + s.timeout;
  std::size_t final_count = 0;
  int confirmed = 0;
  int cancelled = 0;
  auto last_line = Clock::now() - std::chrono::seconds(1);
  for (;;) {
    std::vector<std::size_t> open;
    {
      std::lock_guard lock(mutex);
      for (std::size_t i = 0; i < orders.size(); ++i) {
        const auto& p = orders[i];
        if (!p.order_id.empty() && p.status != "confirmed" && p.status != "cancelled") open.push_back(i);
      }
    }
    for (auto i : open) {
      std::string id;
      {
        std::lock_guard lock(mutex);
        id = orders[i].order_id;
      }
      auto res = http->Get("/orders/" + id);
      if (!res || res->status != 200) continue;
      auto view = nlohmann::json::parse(res->body, nullptr, false);
      if (view.is_discarded()) continue;
      std::lock_guard lock(mutex);
      auto& p = orders[i];
      p.status = view.value("status", "unknown");
      p.reason = view.value("reason", "");
      if (view.contains("completion_ms")) p.completion_ms = view["completion_ms"].get<std::int64_t>();
      if (p.status == "confirmed" || p.status == "cancelled") {
        ++final_count;
        (p.status == "confirmed" ? confirmed : cancelled)++;
        p.view = std::move(view);
      }
    }
    int failed_posts = 0;
    {
      std::lock_guard lock(mutex);
      for (const auto& p : orders) failed_posts += p.post_error.empty() ? 0 : 1;
    }
    const bool posting_done = placed.load() == s.orders;
    const bool done = posting_done && final_count + static_cast<std::size_t>(failed_posts) == orders.size();
    const auto now = Clock::now();
    if (done || now - last_line >= std::chrono::milliseconds(s.live_progress ? 100 : 1000)) {
      const std::string line =
          fmt::format("  placed {:>4}/{}   confirmed {:>4}   cancelled {:>4}   in flight {:>4}", placed.load(),
                      s.orders, confirmed, cancelled, placed.load() - failed_posts - static_cast<int>(final_count));
      out << (s.live_progress ? "\r" : "") << line << (s.live_progress ? "" : "\n") << std::flush;
      last_line = now;
    }
    if (done || now > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (auto& t : clients) t.join();
  if (s.live_progress) out << "\n";
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();

  // --- summary ----------------------------------------------------------------
  std::map<std::string, int> by_status;
  std::map<std::string, int> reasons;
  std::vector<std::int64_t> completion;
  int unexpected = 0;
  int duplicates = 0;
  int mismatched = 0;
  const Planned* example = nullptr;
  for (const auto& p : orders) {
    by_status[p.post_error.empty() ? p.status : "not placed"]++;
    if (p.status == "cancelled") {
      for (const char* code : {"payment_declined", "out_of_stock"}) {
        if (p.reason.find(code) != std::string::npos) reasons[code]++;
      }
      if (example == nullptr && p.expect == "payment_declined") example = &p;
    }
    if (p.completion_ms >= 0) completion.push_back(p.completion_ms);
    if (!ended_as_designed(p)) ++unexpected;
    if (p.post_twice) ++duplicates;
    if (p.duplicate_mismatch) ++mismatched;
  }

  out << fmt::format("\n{} orders in {:.1f} s ({} posted twice with the same Idempotency-Key)\n", s.orders, seconds,
                     duplicates);
  for (const auto& [status, n] : by_status) {
    std::string detail;
    if (status == "cancelled") {
      for (const auto& [code, m] : reasons) detail += (detail.empty() ? "" : ", ") + code + " " + std::to_string(m);
    }
    out << fmt::format("  {:<12}{:>5}{}\n", status, n, detail.empty() ? "" : "   (" + detail + ")");
  }
  out << fmt::format("Completion time (placed -> confirmed/cancelled): p50 {} ms, p99 {} ms\n",
                     percentile(completion, 50), percentile(completion, 99));

  std::map<std::string, std::map<std::string, double>> handled;
  std::vector<std::string> urls = s.scrape_urls.empty() ? std::vector<std::string>{s.order_url} : s.scrape_urls;
  for (const auto& url : urls) {
    auto res = client(url)->Get("/metrics");
    if (res && res->status == 200) {
      add_handled(res->body, handled);
    } else {
      out << "  (no metrics from " << url << ")\n";
    }
  }
  out << "Work per replica (from each service's /metrics):\n";
  out << fmt::format("  {:<16}{:>9}{:>8}  {}\n", "replica", "commands", "events", "commands by type");
  for (const auto& [instance, types] : handled) {
    std::vector<std::pair<std::string, long>> commands;
    long command_total = 0;
    long event_total = 0;
    for (const auto& [type, n] : types) {
      const auto count = static_cast<long>(n);
      if (count == 0) continue;
      if (is_event(type)) {
        event_total += count;
      } else {
        command_total += count;
        commands.emplace_back(type, count);
      }
    }
    std::stable_sort(commands.begin(), commands.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    std::string detail;
    for (const auto& [type, n] : commands) detail += fmt::format("{}{} {}", detail.empty() ? "" : ", ", type, n);
    std::string line = fmt::format("  {:<16}{:>9}{:>8}  {}", instance, command_total, event_total, detail);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  }

  if (example != nullptr && !example->view.is_null()) {
    out << "Who cancelled " << example->order_id << "? Its history:\n";
    for (const auto& h : example->view["history"]) {
      out << fmt::format("  {}  {:<18} by {:<22}{}{}\n", h.value("at", ""), h.value("event", ""), h.value("actor", ""),
                         h.contains("from") ? " from " + h.value("from", "") : "",
                         h.contains("detail") ? "  " + h.value("detail", "") : "");
    }
  }

  const bool ok = unexpected == 0 && mismatched == 0;
  if (mismatched > 0) out << mismatched << " duplicate POSTs got a different order back\n";
  if (unexpected > 0) {
    out << unexpected << " orders did not end as designed:\n";
    int shown = 0;
    for (const auto& p : orders) {
      if (ended_as_designed(p) || shown++ >= 10) continue;
      out << "  " << (p.order_id.empty() ? p.key : p.order_id) << " expected " << p.expect << ", got " << p.status
          << (p.post_error.empty() ? "" : " (POST failed: " + p.post_error + ")") << " " << p.reason << "\n";
    }
  }
  out << (ok ? "Every order ended as designed.\n" : "FAILED\n");
  return ok ? 0 : 1;
}

}  // namespace order_flow
