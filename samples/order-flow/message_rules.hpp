#pragma once
// What every command and event of the order flow must satisfy before a
// handler sees it, wherever it comes from (HTTP, another service over NATS,
// a client in another language): ids and SKUs of a bounded alphabet,
// quantities 1..1000, amounts positive and finite, names without control
// characters. A message that breaks a rule is a `validation` error: the
// request is answered 400/validation, a consumed event is dead-lettered.
//
//   auto v = std::make_shared<catga::ValidationBehavior>();
//   add_message_rules(*v);
//   mediator.use(v);

#include <catga/pipeline/validation.hpp>
#include <string_view>

namespace order_flow {

// 1-64 characters of [A-Za-z0-9_-].
bool valid_token(std::string_view s);

// Registers the rules of every order-flow message type (PlaceOrder's own,
// validate_place_order, is registered by the order service).
void add_message_rules(catga::ValidationBehavior& validation);

}  // namespace order_flow
