#pragma once
// The keyed events of the ordered-group tests: per-key sequence numbers over
// two types, so a test can tell the order in which a key's events ran.

#include <string>

#include "catga/mediator.hpp"

namespace ordered {

struct KeyedA {
  std::string key;
  int n = 0;
};
CATGA_EVENT(KeyedA, key, n)
CATGA_ORDERING_KEY(KeyedA, key)

// Exactly once: the workers run it through IdempotencyBehavior.
struct KeyedB {
  std::string key;
  int n = 0;
};
CATGA_EVENT(KeyedB, key, n)
CATGA_ORDERING_KEY(KeyedB, key)
CATGA_QOS(KeyedB, catga::QoS::exactly_once)

// The type of event n of a key: A and B interleaved.
inline bool is_a(int n) { return n % 2 == 0; }

}  // namespace ordered
