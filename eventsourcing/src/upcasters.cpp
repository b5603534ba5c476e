#include "catga/eventsourcing/upcasters.hpp"

#include <algorithm>

namespace catga::eventsourcing {

void Upcasters::add(std::string type, int from_schema, Transform step) {
  auto& cur = current_[type];
  cur = std::max({cur, from_schema + 1, 1});
  steps_[{std::move(type), from_schema}] = std::move(step);
}

int Upcasters::current(std::string_view type) const noexcept {
  auto it = current_.find(type);
  return it == current_.end() ? 1 : it->second;
}

Status Upcasters::upcast(std::string_view type, int& schema, nlohmann::json& data) const {
  if (steps_.empty()) return {};
  const std::string key(type);
  for (auto it = steps_.find(std::pair<std::string, int>(key, schema)); it != steps_.end();
       it = steps_.find(std::pair<std::string, int>(key, schema))) {
    try {
      data = it->second(std::move(data));
    } catch (const std::exception& e) {
      return make_error(errc::malformed,
                        "upcasting '" + key + "' from schema " + std::to_string(schema) + " failed: " + e.what());
    }
    ++schema;
  }
  return {};
}

}  // namespace catga::eventsourcing
