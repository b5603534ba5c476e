#pragma once
// The demo driver: places a batch of orders over HTTP, follows them to the
// end, and prints what happened.

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace order_flow {

// Settings of run_demo.
struct DemoSettings {
  std::string order_url = "http://127.0.0.1:8080";
  // Base URLs of every service whose /metrics to read for the per-replica
  // summary; empty: order_url only (enough when one process runs everything).
  std::vector<std::string> scrape_urls;
  int orders = 60;
  int concurrency = 4;
  std::chrono::seconds timeout{std::chrono::seconds(180)};
  // Progress on one line rewritten in place (a terminal), else a line a second.
  bool live_progress = true;
};

// Places `orders` orders: most should be confirmed, every 10th from customer
// "declined", every 10th over the customer's limit (both → payment
// declined), every 10th with SKU SOLDOUT-1 (→ out of stock); every 7th is
// posted twice with the same Idempotency-Key. Waits until every order is
// confirmed or cancelled, then prints counts by status, commands handled
// per replica (from each /metrics) and p50/p99 completion time. Returns 0
// when every order ended as designed and every duplicate got the same
// order back, else 1.
//
//   return order_flow::run_demo({.order_url = "http://127.0.0.1:8080"}, std::cout);
int run_demo(const DemoSettings& settings, std::ostream& out);

}  // namespace order_flow
