#pragma once
// Snapshot encoding shared by Repository<A> (the value stored in the KV bucket).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "catga/eventsourcing/recorded_event.hpp"

namespace catga::eventsourcing {

// What a snapshot says about itself. The value in the bucket is
// {"schema":S,"version":V,"sequence":Q,"commits":C,"state":{...}}.
//
//   auto s = decode_snapshot(entry.value);   // nullopt: undecodable, replay instead
struct SnapshotHeader {
  int schema = 1;              // of the state's JSON shape (RepositoryOptions::snapshot_schema)
  Position position;           // the state includes every event up to here
  std::uint64_t commits = 0;   // commits the state includes
};

struct DecodedSnapshot {
  SnapshotHeader header;
  nlohmann::json state;
};

std::string encode_snapshot(const SnapshotHeader& header, const nlohmann::json& state);
// nullopt when `value` is not a snapshot (corrupt, another format).
std::optional<DecodedSnapshot> decode_snapshot(std::string_view value) noexcept;

namespace detail {
// Logs (spdlog, "catga.es") that a snapshot was not used or not written.
void note_snapshot_problem(std::string_view key, std::string_view what) noexcept;
}  // namespace detail

}  // namespace catga::eventsourcing
