#include "commit_codec.hpp"

#include <nlohmann/json.hpp>

namespace catga::eventsourcing::detail {

using json = nlohmann::json;

std::string commit_message_id(const StreamId& stream, std::uint64_t last_version, std::string_view commit_id) {
  std::string id = stream.key();
  id.append(":").append(std::to_string(last_version)).append(":").append(commit_id);
  return id;
}

StreamId parse_stream_key(std::string_view key) {
  const auto dot = key.find('.');
  if (dot == std::string_view::npos) return StreamId{std::string(key), {}};
  return StreamId{std::string(key.substr(0, dot)), std::string(key.substr(dot + 1))};
}

std::string encode_commit(const Commit& commit) {
  json events = json::array();
  for (const auto& e : commit.events) {
    events.push_back(json{
        {"id", e.id},
        {"type", e.type},
        {"schema", e.schema},
        {"version", e.version},
        {"time_ns", std::chrono::duration_cast<std::chrono::nanoseconds>(e.time.time_since_epoch()).count()},
        {"actor", e.actor},
        {"correlation_id", e.correlation_id},
        {"causation_id", e.causation_id},
        {"data", e.data},
    });
  }
  json body{{"stream", commit.stream.key()}, {"commit", commit.commit_id}, {"events", std::move(events)}};
  return body.dump();
}

Result<Commit> decode_commit(std::string_view body, std::uint64_t sequence, const Upcasters* upcasters) {
  Commit c;
  c.sequence = sequence;
  try {
    json j = json::parse(body);
    c.stream = parse_stream_key(j.at("stream").get<std::string>());
    c.commit_id = j.at("commit").get<std::string>();
    auto& events = j.at("events");
    c.events.reserve(events.size());
    for (auto& e : events) {
      RecordedEvent r;
      r.id = e.at("id").get<std::string>();
      r.type = e.at("type").get<std::string>();
      r.schema = e.value("schema", 1);
      r.version = e.at("version").get<std::uint64_t>();
      r.time = std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(e.value("time_ns", std::int64_t{0}))));
      r.actor = e.value("actor", std::string{});
      r.correlation_id = e.value("correlation_id", std::string{});
      r.causation_id = e.value("causation_id", std::string{});
      r.data = std::move(e.at("data"));
      if (upcasters != nullptr) {
        if (auto s = upcasters->upcast(r.type, r.schema, r.data); !s) return std::move(s).error();
      }
      c.events.push_back(std::move(r));
    }
  } catch (const std::exception& e) {
    return make_error(errc::malformed, "event store message " + std::to_string(sequence) + " is not a commit: " + e.what());
  }
  if (c.events.empty()) return make_error(errc::malformed, "event store message " + std::to_string(sequence) + " has no events");
  return c;
}

}  // namespace catga::eventsourcing::detail
