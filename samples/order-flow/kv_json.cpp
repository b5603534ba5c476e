#include "kv_json.hpp"

namespace order_flow {

catga::Result<std::optional<JsonEntry>> load_json(catga::KeyValue& kv, std::string_view key) {
  auto e = kv.get(key);
  if (!e) return std::move(e).error();
  if (!*e) return std::optional<JsonEntry>();
  auto doc = nlohmann::json::parse((*e)->value, nullptr, false);
  if (doc.is_discarded()) {
    return catga::make_error(catga::errc::malformed, "value of '" + std::string(key) + "' is not JSON");
  }
  return std::optional<JsonEntry>(JsonEntry{std::move(doc), (*e)->revision});
}

catga::Result<CreateOutcome> create_json(catga::KeyValue& kv, std::string_view key, const nlohmann::json& value) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    auto created = kv.create(key, value.dump());
    if (created) return CreateOutcome{JsonEntry{value, *created}, true};
    if (created.error().code != catga::errc::conflict) return std::move(created).error();
    auto existing = load_json(kv, key);
    if (!existing) return std::move(existing).error();
    // Absent again: it was deleted between our create and our read; try again.
    if (*existing) return CreateOutcome{std::move(**existing), false};
  }
  return catga::make_error(catga::errc::conflict, "key '" + std::string(key) + "' keeps appearing and vanishing", true);
}

std::string key_token(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    const bool plain =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (plain) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('=');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  if (out.empty()) out = "=";
  return out;
}

}  // namespace order_flow
