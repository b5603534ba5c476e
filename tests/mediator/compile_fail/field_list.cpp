// Compiled by the mediator_field_list_checked test (CMakeLists.txt): a
// CATGA_* field list that leaves out a data member, or a CATGA_REQUIRED that
// names a field not in the list, must not compile (the member would silently
// not be sent), with catga's message rather than a template error.
#include "catga/message.hpp"

namespace shop {

#if defined(CASE_GOOD)
struct Charged {
  std::string order_id;
  long cents = 0;
  std::string currency = "EUR";
  CATGA_REQUIRED(order_id, cents)
};
CATGA_EVENT(Charged, order_id, cents, currency)
#elif defined(CASE_MEMBER_LEFT_OUT)
struct Charged {
  std::string order_id;
  long cents = 0;
  std::string currency = "EUR";
};
CATGA_EVENT(Charged, order_id, cents)
#elif defined(CASE_REQUIRED_NOT_LISTED)
struct Charged {
  std::string order_id;
  long cents = 0;
  CATGA_REQUIRED(order_id, currency)
};
CATGA_EVENT(Charged, order_id, cents)
#endif

}  // namespace shop

int main() {}
