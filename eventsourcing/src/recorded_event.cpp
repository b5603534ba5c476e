#include "catga/eventsourcing/recorded_event.hpp"

#include <algorithm>

namespace catga::eventsourcing {
namespace {

bool token_ok(std::string_view s) {
  return !s.empty() && s.size() <= 256 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '=';
  });
}

}  // namespace

Status StreamId::validate() const {
  if (!token_ok(type)) {
    return make_error(errc::validation, "aggregate type '" + type + "' is not a token of [A-Za-z0-9_=-]");
  }
  if (!token_ok(id)) {
    return make_error(errc::validation, "aggregate id '" + id + "' of '" + type + "' is not a token of [A-Za-z0-9_=-]");
  }
  return {};
}

}  // namespace catga::eventsourcing
