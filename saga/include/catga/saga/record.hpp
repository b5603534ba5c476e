#pragma once
// SagaRecord: the persisted state of one saga instance.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace catga {

// Where a saga stands. running/compensating are active; the others are final.
enum class SagaStatus { running, compensating, completed, compensated, compensation_failed };

std::string_view to_string(SagaStatus status) noexcept;
std::optional<SagaStatus> saga_status_from(std::string_view text) noexcept;
inline bool is_final(SagaStatus s) noexcept {
  return s == SagaStatus::completed || s == SagaStatus::compensated || s == SagaStatus::compensation_failed;
}

// One line of a saga's history: what happened to which step, when.
struct SagaHistoryEntry {
  int step = 0;
  std::string step_name;
  std::string what;  // "completed", "failed", "compensated", "compensation_failed", "retry"
  std::string error;
  std::int64_t at_ms = 0;  // unix time, milliseconds
};

// The saga as stored after every step (see SagaStore). `step` is the step
// being run (running) or compensated (compensating); `attempt` is the attempt
// in flight for it (0 = none yet). Persisting the attempt before sending makes
// a resumed saga resend the same command id, which receivers deduplicate.
//
//   SagaRecord r = orchestrator.get("order-42").value();
//   if (r.status == catga::SagaStatus::compensated) std::cout << r.error;
struct SagaRecord {
  std::string id;
  std::string type;
  SagaStatus status = SagaStatus::running;
  int step = 0;
  int attempt = 0;
  nlohmann::json data;
  std::string error;           // why it compensates / failed
  std::string correlation_id;  // carried by every step command
  std::string traceparent;     // W3C trace of the request that started it
  std::string owner;           // orchestrator instance driving it
  std::int64_t lease_until_ms = 0;
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
  std::vector<SagaHistoryEntry> history;
};

void to_json(nlohmann::json& j, const SagaHistoryEntry& e);
void from_json(const nlohmann::json& j, SagaHistoryEntry& e);
void to_json(nlohmann::json& j, const SagaRecord& r);
void from_json(const nlohmann::json& j, SagaRecord& r);

std::int64_t unix_ms_now() noexcept;

}  // namespace catga
