#pragma once
// Every standard behavior of catga::pipeline in one include.
//
//   #include <catga/pipeline.hpp>
//   mediator.use(std::make_shared<catga::LoggingBehavior>());
//   mediator.use(std::make_shared<catga::MetricsBehavior>(metrics));
//   mediator.use(std::make_shared<catga::TimeoutBehavior>(catga::TimeoutOptions{.default_timeout = 5s}));
//   mediator.use(std::make_shared<catga::RetryBehavior>());
//   mediator.use(std::make_shared<catga::IdempotencyBehavior>(catga::IdempotencyOptions{.store = store}));
//   mediator.use(validation);

#include "catga/pipeline/clock.hpp"
#include "catga/pipeline/idempotency.hpp"
#include "catga/pipeline/idempotency_store.hpp"
#include "catga/pipeline/in_memory_idempotency_store.hpp"
#include "catga/pipeline/logging.hpp"
#include "catga/pipeline/metrics.hpp"
#include "catga/pipeline/retry.hpp"
#include "catga/pipeline/timeout.hpp"
#include "catga/pipeline/validation.hpp"
