#pragma once
// Upcasters: turn events stored in an old shape into the current one on read.

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>

#include "catga/result.hpp"

namespace catga::eventsourcing {

// Transforms per (event type, schema version): the one registered for
// (T, n) turns data of schema n into schema n + 1. Reading applies them in a
// chain up to the current schema of T (the highest registered + 1), so the
// store never rewrites history and handlers only know the current shape.
// New appends of T are stamped with the current schema. Register before the
// store is used; reads are thread-safe afterwards.
//
//   catga::eventsourcing::Upcasters up;
//   // v1 had "amount" in cents; v2 has "total" in currency units.
//   up.add("OrderPlaced", 1, [](nlohmann::json d) {
//     d["total"] = d["amount"].get<double>() / 100.0;
//     d.erase("amount");
//     return d;
//   });
class Upcasters {
 public:
  using Transform = std::function<nlohmann::json(nlohmann::json)>;

  // Registers the step from `from_schema` to `from_schema + 1` (replaces one
  // registered before for the same pair).
  void add(std::string type, int from_schema, Transform step);

  // The schema new events of `type` are written in (1 when none registered).
  int current(std::string_view type) const noexcept;

  // Brings `data` of schema `schema` to the current one; sets `schema` to it.
  // A step that throws gives a `malformed` Error naming the type and schema.
  Status upcast(std::string_view type, int& schema, nlohmann::json& data) const;

  bool empty() const noexcept { return steps_.empty(); }

 private:
  std::map<std::pair<std::string, int>, Transform, std::less<>> steps_;
  std::map<std::string, int, std::less<>> current_;
};

}  // namespace catga::eventsourcing
