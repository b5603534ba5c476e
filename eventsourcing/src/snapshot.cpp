#include "catga/eventsourcing/snapshot.hpp"

#include <spdlog/spdlog.h>

namespace catga::eventsourcing {

std::string encode_snapshot(const SnapshotHeader& h, const nlohmann::json& state) {
  nlohmann::json j{{"schema", h.schema},
                   {"version", h.position.version},
                   {"sequence", h.position.sequence},
                   {"commits", h.commits},
                   {"state", state}};
  return j.dump();
}

std::optional<DecodedSnapshot> decode_snapshot(std::string_view value) noexcept {
  try {
    auto j = nlohmann::json::parse(value);
    DecodedSnapshot d;
    d.header.schema = j.at("schema").get<int>();
    d.header.position.version = j.at("version").get<std::uint64_t>();
    d.header.position.sequence = j.at("sequence").get<std::uint64_t>();
    d.header.commits = j.at("commits").get<std::uint64_t>();
    d.state = std::move(j.at("state"));
    return d;
  } catch (...) {
    return std::nullopt;
  }
}

namespace detail {
void note_snapshot_problem(std::string_view key, std::string_view what) noexcept {
  try {
    spdlog::warn("catga.es snapshot '{}': {}", key, what);
  } catch (...) {
  }
}
}  // namespace detail

}  // namespace catga::eventsourcing
