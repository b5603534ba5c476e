#include "catga/pipeline/idempotency_store.hpp"

#include "catga/wire.hpp"

namespace catga {

std::string encode_outcome(const IdempotencyOutcome& outcome) {
  if (outcome.error) return wire::encode_reply(Status(*outcome.error), nullptr);
  return wire::encode_reply(Status(), outcome.value.is_null() ? nullptr : &outcome.value);
}

Result<IdempotencyOutcome> decode_outcome(std::string_view bytes) {
  // decode_reply turns {"ok":false,...} into an Error; for a stored outcome
  // that Error is data, so malformed bodies are told apart from it first.
  auto json = wire::parse_json(bytes);
  if (!json) return std::move(json).error();
  if (!json->is_object() || !json->contains("ok") || !(*json)["ok"].is_boolean()) {
    return make_error(errc::malformed, "stored idempotency outcome has no boolean \"ok\" field");
  }
  auto reply = wire::decode_reply(bytes);
  IdempotencyOutcome out;
  if (reply) {
    out.value = std::move(*reply);
  } else {
    out.error = std::move(reply).error();
  }
  return out;
}

}  // namespace catga
