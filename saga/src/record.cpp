#include "catga/saga/record.hpp"

#include <chrono>

namespace catga {

std::string_view to_string(SagaStatus s) noexcept {
  switch (s) {
    case SagaStatus::running: return "running";
    case SagaStatus::compensating: return "compensating";
    case SagaStatus::completed: return "completed";
    case SagaStatus::compensated: return "compensated";
    case SagaStatus::compensation_failed: return "compensation_failed";
  }
  return "unknown";
}

std::optional<SagaStatus> saga_status_from(std::string_view t) noexcept {
  for (auto s : {SagaStatus::running, SagaStatus::compensating, SagaStatus::completed, SagaStatus::compensated,
                 SagaStatus::compensation_failed}) {
    if (to_string(s) == t) return s;
  }
  return std::nullopt;
}

void to_json(nlohmann::json& j, const SagaHistoryEntry& e) {
  j = {{"step", e.step}, {"step_name", e.step_name}, {"what", e.what}, {"error", e.error}, {"at_ms", e.at_ms}};
}

void from_json(const nlohmann::json& j, SagaHistoryEntry& e) {
  j.at("step").get_to(e.step);
  j.at("step_name").get_to(e.step_name);
  j.at("what").get_to(e.what);
  j.at("error").get_to(e.error);
  j.at("at_ms").get_to(e.at_ms);
}

void to_json(nlohmann::json& j, const SagaRecord& r) {
  j = {{"id", r.id},
       {"type", r.type},
       {"status", to_string(r.status)},
       {"step", r.step},
       {"attempt", r.attempt},
       {"tries", r.tries},
       {"uncertain_since_ms", r.uncertain_since_ms},
       {"data", r.data},
       {"error", r.error},
       {"correlation_id", r.correlation_id},
       {"traceparent", r.traceparent},
       {"owner", r.owner},
       {"lease_until_ms", r.lease_until_ms},
       {"created_ms", r.created_ms},
       {"updated_ms", r.updated_ms},
       {"history", r.history}};
  // Only when there is one: records stay as they were for the rest.
  if (!r.tracestate.empty()) j["tracestate"] = r.tracestate;
}

void from_json(const nlohmann::json& j, SagaRecord& r) {
  j.at("id").get_to(r.id);
  j.at("type").get_to(r.type);
  auto status = saga_status_from(j.at("status").get<std::string>());
  if (!status) throw std::invalid_argument("unknown saga status " + j.at("status").dump());
  r.status = *status;
  j.at("step").get_to(r.step);
  j.at("attempt").get_to(r.attempt);
  // Absent in records written before these fields existed: every send then
  // had its own attempt number, and an unknown outcome was not tracked.
  r.tries = j.value("tries", r.attempt);
  r.uncertain_since_ms = j.value("uncertain_since_ms", std::int64_t{0});
  r.data = j.at("data");
  j.at("error").get_to(r.error);
  j.at("correlation_id").get_to(r.correlation_id);
  r.traceparent = j.value("traceparent", std::string());
  r.tracestate = j.value("tracestate", std::string());
  j.at("owner").get_to(r.owner);
  j.at("lease_until_ms").get_to(r.lease_until_ms);
  j.at("created_ms").get_to(r.created_ms);
  j.at("updated_ms").get_to(r.updated_ms);
  j.at("history").get_to(r.history);
}

std::int64_t unix_ms_now() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace catga
