#pragma once
// Adding finished sagas to SagaCounts (the stores' shared bookkeeping).

#include <cstddef>

#include "catga/saga/store.hpp"

namespace catga::detail {

// Adds `n` sagas that finished in `status` (nothing for an active status).
inline void count_finished(SagaCounts& counts, SagaStatus status, std::size_t n = 1) {
  if (status == SagaStatus::completed) counts.completed += n;
  if (status == SagaStatus::compensated) counts.compensated += n;
  if (status == SagaStatus::compensation_failed) counts.compensation_failed += n;
}

}  // namespace catga::detail
