#include "catga/pipeline/validation.hpp"

namespace catga {

std::string ValidationErrors::to_string() const {
  std::string out;
  for (const auto& e : errors_) {
    if (!out.empty()) out += "; ";
    if (!e.field.empty()) out.append(e.field).append(": ");
    out += e.message;
  }
  return out;
}

void ValidationBehavior::add_erased(const MessageInfo& info, Validator v) {
  if (info.slot >= by_slot_.size()) by_slot_.resize(info.slot + 1);
  by_slot_[info.slot].push_back(std::move(v));
}

void ValidationBehavior::run(const MessageInfo& info, const void* message, ValidationErrors& errors) const {
  if (info.slot >= by_slot_.size()) return;
  for (const auto& v : by_slot_[info.slot]) v(message, errors);
}

Status ValidationBehavior::handle(Invocation& inv, Next next) {
  const std::size_t slot = inv.info.slot;
  if (slot >= by_slot_.size() || by_slot_[slot].empty()) return next();
  ValidationErrors errors;
  for (const auto& v : by_slot_[slot]) v(inv.message, errors);
  if (errors.empty()) return next();
  return make_error(errc::validation, errors.to_string(), false);
}

}  // namespace catga
