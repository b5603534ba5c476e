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
  // "completed", "failed", "retry" (an uncertain or retryable outcome, resent),
  // "compensated", "compensation_retry", "compensation_failed"
  std::string what;
  std::string error;
  std::int64_t at_ms = 0;  // unix time, milliseconds
};

// The saga as stored after every step (see SagaStore). `step` is the step
// being run (running) or compensated (compensating); `attempt` is the number
// in its command id "<saga>/s<step>/<attempt>" ("/c" for a compensation;
// 0 = not sent yet), persisted before the first send (a step's first send is
// recorded by the same write that records the step before it completed, or
// by the saga's creation for step 0). Later sends, retries
// and resends after a crash alike, reuse that id: the receiver deduplicates
// it, so a send that did take effect is answered with its stored outcome
// instead of being applied again. Only a compensation answered with a
// definitive failure moves on to the next number, so that its next try runs
// instead of being answered with the remembered failure.
//
//   SagaRecord r = orchestrator.get("order-42").value();
//   if (r.status == catga::SagaStatus::compensated) std::cout << r.error;
struct SagaRecord {
  std::string id;
  std::string type;
  SagaStatus status = SagaStatus::running;
  int step = 0;
  int attempt = 0;
  // Sends of `step` so far, the one in flight included (0 = none yet): what
  // SagaStep::max_attempts and the compensation policy count.
  int tries = 0;
  // Since when (unix ms) it is unknown whether `step` took effect: a send
  // timed out, lost its reply or failed retryably, or was in flight when its
  // driver stopped. 0: no send of it has an unknown outcome. Such a step is
  // resent (same id) until its outcome is known; if the saga gives up, the
  // step is compensated with the ones before it.
  std::int64_t uncertain_since_ms = 0;
  nlohmann::json data;
  std::string error;           // why it compensates / failed
  std::string correlation_id;  // carried by every step command
  std::string traceparent;     // W3C trace of the request that started it
  std::string tracestate;      // and its W3C tracestate (every step carries it)
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
