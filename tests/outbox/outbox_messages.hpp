#pragma once
// The event the outbox tests publish.
#include <string>

#include "catga/message.hpp"

namespace ob {

struct Deposited {
  std::string id;
  int n = 0;
};
CATGA_EVENT(Deposited, id, n)
CATGA_QOS(Deposited, catga::QoS::exactly_once)

inline std::string deposit_id(int i) { return "deposit-" + std::to_string(i); }

}  // namespace ob
