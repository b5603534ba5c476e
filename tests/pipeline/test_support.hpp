#pragma once
// Messages and test doubles shared by the pipeline tests.

#include <atomic>
#include <chrono>
#include <string>

#include "catga/mediator.hpp"
#include "catga/pipeline/clock.hpp"

namespace pt {

struct PlaceOrder {
  std::string customer;
  double amount = 0;
};
CATGA_COMMAND(PlaceOrder, std::string, customer, amount)

struct Ship {
  std::string order_id;
};
CATGA_COMMAND(Ship, void, order_id)

struct Add {
  int x = 0;
  int y = 0;
};
CATGA_COMMAND(Add, int, x, y)

struct GetPrice {
  std::string sku;
};
CATGA_QUERY(GetPrice, double, sku)

struct OrderPlaced {
  std::string order_id;
};
CATGA_EVENT(OrderPlaced, order_id)

// A ManualClock that counts reads, to prove a path never looks at the time.
class CountingClock final : public catga::Clock {
 public:
  time_point now() const noexcept override {
    reads.fetch_add(1);
    return inner.now();
  }
  void sleep_for(duration d) override { inner.sleep_for(d); }

  catga::ManualClock inner;
  mutable std::atomic<int> reads{0};
};

inline catga::Error busy() { return catga::make_error("busy", "try later", true); }

}  // namespace pt
