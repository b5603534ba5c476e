#pragma once
// Message types shared by the mediator tests: one of every kind.

#include <catga/mediator.hpp>

#include <string>
#include <vector>

namespace catga_test {

struct Price {
  std::string currency;
  long cents = 0;
  friend bool operator==(const Price&, const Price&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Price, currency, cents)

// Command with a result.
struct PlaceOrder {
  std::string customer;
  std::vector<std::string> skus;
  double amount = 0;
  friend bool operator==(const PlaceOrder&, const PlaceOrder&) = default;
};
CATGA_COMMAND(PlaceOrder, std::string, customer, skus, amount)

// Command without a result.
struct ShipOrder {
  std::string order_id;
  int priority = 0;
  friend bool operator==(const ShipOrder&, const ShipOrder&) = default;
};
CATGA_COMMAND(ShipOrder, void, order_id, priority)

// Query.
struct GetPrice {
  std::string sku;
  friend bool operator==(const GetPrice&, const GetPrice&) = default;
};
CATGA_QUERY(GetPrice, Price, sku)

// Event.
struct OrderPlaced {
  std::string order_id;
  double amount = 0;
  friend bool operator==(const OrderPlaced&, const OrderPlaced&) = default;
};
CATGA_EVENT(OrderPlaced, order_id, amount)
CATGA_QOS(OrderPlaced, catga::QoS::exactly_once)

// A command whose result is a plain number (used in hot loops).
struct Add {
  int x = 0;
  int y = 0;
};
CATGA_COMMAND(Add, int, x, y)

// A message with a hand-written codec and a wire name unlike its C++ name.
struct Ping {};
CATGA_MESSAGE(Ping, catga::EventTag, "system.Ping")
inline void to_json(nlohmann::json& j, const Ping&) { j = nlohmann::json::object(); }
inline void from_json(const nlohmann::json&, Ping&) {}
CATGA_QOS(Ping, catga::QoS::at_most_once)

// A message with no JSON codec at all: dispatches locally, cannot leave the process.
struct LocalOnly {
  int n = 0;
};
CATGA_MESSAGE(LocalOnly, catga::CommandTag<int>, "LocalOnly")

}  // namespace catga_test
