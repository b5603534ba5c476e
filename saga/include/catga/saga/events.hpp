#pragma once
// Saga lifecycle events, published through the mediator (and its transport).

#include <string>

#include "catga/message.hpp"

namespace catga {

// A saga was started.
//   mediator.on<catga::SagaStarted>([](const catga::SagaStarted& e) { ... });
struct SagaStarted {
  std::string saga_id;
  std::string saga_type;
};
CATGA_EVENT(SagaStarted, saga_id, saga_type)

// A step's action succeeded.
struct SagaStepCompleted {
  std::string saga_id;
  std::string saga_type;
  int step = 0;
  std::string step_name;
};
CATGA_EVENT(SagaStepCompleted, saga_id, saga_type, step, step_name)

// Every step succeeded.
struct SagaCompleted {
  std::string saga_id;
  std::string saga_type;
};
CATGA_EVENT(SagaCompleted, saga_id, saga_type)

// A step failed and every completed step was compensated.
struct SagaCompensated {
  std::string saga_id;
  std::string saga_type;
  std::string reason;
};
CATGA_EVENT(SagaCompensated, saga_id, saga_type, reason)

// A compensation kept failing: the saga needs an operator.
struct SagaFailed {
  std::string saga_id;
  std::string saga_type;
  int step = 0;
  std::string step_name;
  std::string error;
};
CATGA_EVENT(SagaFailed, saga_id, saga_type, step, step_name, error)

}  // namespace catga
