#pragma once
// JSON documents in a catga::KeyValue: read, create-if-absent, and
// read-modify-write with revision checks (what keeps replicas consistent).

#include <catga/key_value.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace order_flow {

// A document and the revision it was read at.
struct JsonEntry {
  nlohmann::json value;
  std::uint64_t revision = 0;
};

// What a change function decided.
enum class Write { yes, no };

// The document at `key`, or nullopt. Values that are not JSON are an Error.
catga::Result<std::optional<JsonEntry>> load_json(catga::KeyValue& kv, std::string_view key);

// Stores `value` at `key` unless the key exists; returns what is stored now
// (ours, or the one another writer stored first) and whether it was ours.
struct CreateOutcome {
  JsonEntry entry;
  bool created = false;
};
catga::Result<CreateOutcome> create_json(catga::KeyValue& kv, std::string_view key, const nlohmann::json& value);

// Read-modify-write of the document at `key`, retried on revision conflicts
// (another replica wrote in between). `change(doc)` gets the current
// document (null when the key is absent), edits it in place and returns
// Write::yes to store it, Write::no to leave the key alone, or an Error to
// stop. It may run several times, so it must not have side effects. Returns
// the document as it is after the call (null when absent and not created).
//
//   auto stock = order_flow::modify_json(kv, "stock.A-1", [](nlohmann::json& s) -> catga::Result<Write> {
//     if (s["available"].get<int>() < 2) return catga::make_error("out_of_stock", "A-1");
//     s["available"] = s["available"].get<int>() - 2;
//     return Write::yes;
//   });
template <class F>
catga::Result<nlohmann::json> modify_json(catga::KeyValue& kv, std::string_view key, F&& change,
                                          int max_attempts = 200) {
  for (int attempt = 0; attempt < max_attempts; ++attempt) {
    auto current = load_json(kv, key);
    if (!current) return std::move(current).error();
    nlohmann::json doc = *current ? (*current)->value : nlohmann::json();
    catga::Result<Write> decision = change(doc);
    if (!decision) return std::move(decision).error();
    if (*decision == Write::no) return doc;
    const std::string text = doc.dump();
    auto written = *current ? kv.update(key, text, (*current)->revision) : kv.create(key, text);
    if (written) return doc;
    if (written.error().code != catga::errc::conflict) return std::move(written).error();
  }
  return catga::make_error(catga::errc::conflict, "key '" + std::string(key) + "' kept changing", true);
}

// `text` as one token of a KV key: [A-Za-z0-9_-] kept, any other byte as
// "=XX" (hex), so customer names and idempotency keys make valid keys.
std::string key_token(std::string_view text);

}  // namespace order_flow
