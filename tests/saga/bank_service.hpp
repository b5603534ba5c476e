#pragma once
// The payment service of saga_nats_test's crash case, shared by the test and
// the saga_bank_service process: its commands and its ledger's layout.
//
// The ledger is the bucket "bank_ledger":
//   charge.<command id, '/' as '.'>  one key per charge applied ({"order","amount"})
//   refund.<order>                   the refund of an order: the charge keys it
//                                    undid (an empty list: nothing to undo); it
//                                    also makes a later charge of the order fail
#include <catga/mediator.hpp>
#include <string>
#include <string_view>

namespace saga_bank {

struct Charge {
  std::string order;
  int amount = 0;
};
CATGA_COMMAND(Charge, std::string, order, amount)

struct Refund {
  std::string order;
};
CATGA_COMMAND(Refund, void, order)

inline constexpr std::string_view kLedgerBucket = "bank_ledger";
inline constexpr std::string_view kIdempotencyBucket = "bank_idempotency";
inline constexpr std::string_view kServiceGroup = "bank";

// "charge.<id>": saga command ids "<saga>/s<step>/<attempt>" become "charge.<saga>.s<step>.<attempt>".
inline std::string charge_key(std::string_view command_id) {
  std::string key = "charge.";
  for (char c : command_id) key += c == '/' ? '.' : c;
  return key;
}
inline std::string charge_prefix(std::string_view order) { return "charge." + std::string(order) + "."; }
inline std::string refund_key(std::string_view order) { return "refund." + std::string(order); }

}  // namespace saga_bank
