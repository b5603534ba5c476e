// Conformance: an ordered group (subscribe_ordered) handles one key's events
// one at a time in publish order, across its members and workers, also
// when one of them fails and is retried.
#include <doctest/doctest.h>

#include <atomic>

#include "conformance_support.hpp"

using namespace conformance;

namespace {

// The events each key's handler calls completed, in completion order.
struct KeyLog {
  std::mutex mu;
  std::map<std::string, std::vector<int>> done;
  std::atomic<int> total{0};
  void add(const std::string& key, int n) {
    std::lock_guard lock(mu);
    done[key].push_back(n);
    ++total;
  }
};

}  // namespace

TEST_CASE("an ordered group handles each key's events in publish order, a retried one holding back its key") {
  auto broker = make_broker();
  Node a(*broker, "history-a");
  Node b(*broker, "history-b");
  Node publisher(*broker, "publisher");
  KeyLog log;
  std::atomic<bool> failed_once{false};
  auto handler = [&](const Moved& e) -> catga::Status {
    // Event 3 of key k0 fails once: event 4 of k0 must wait for its retry.
    if (e.key == "k0" && e.n == 3 && !failed_once.exchange(true)) {
      return catga::make_error("busy", "try again", true);
    }
    log.add(e.key, e.n);
    return {};
  };
  // Several workers per member (the default is one, which would order
  // anything): keys must still not overtake themselves.
  auto options = group("history");
  options.workers = 4;
  auto sub_a = a.mediator.subscribe_ordered<Moved>(options, handler);
  auto sub_b = b.mediator.subscribe_ordered<Moved>(options, handler);
  REQUIRE(sub_a);
  REQUIRE(sub_b);

  constexpr int kKeys = 8;
  constexpr int kPerKey = 25;
  for (int n = 0; n < kPerKey; ++n) {
    for (int k = 0; k < kKeys; ++k) REQUIRE(publisher.mediator.publish(Moved{"k" + std::to_string(k), n}));
  }

  REQUIRE(catga::test::wait_for([&] {
    std::lock_guard lock(log.mu);
    if (log.done.size() < kKeys) return false;
    for (const auto& [key, ns] : log.done) {
      if (std::find(ns.begin(), ns.end(), kPerKey - 1) == ns.end()) return false;
    }
    return true;
  }, kWait));
  REQUIRE(broker->settled(kWait));
  CHECK(failed_once.load());
  std::lock_guard lock(log.mu);
  for (const auto& [key, ns] : log.done) {
    CAPTURE(key);
    // At-least-once may run an event again, but event n + 1 never runs
    // before event n has run: the first runs come in publish order.
    std::vector<int> first_runs;
    for (int n : ns) {
      if (std::find(first_runs.begin(), first_runs.end(), n) == first_runs.end()) first_runs.push_back(n);
    }
    std::vector<int> expected(kPerKey);
    for (int n = 0; n < kPerKey; ++n) expected[static_cast<std::size_t>(n)] = n;
    CHECK(first_runs == expected);
  }
}
