#pragma once
// Where catga::eventsourcing logs: spdlog's default logger at the time of
// the call, lines prefixed "catga.es".

#include <spdlog/spdlog.h>

namespace catga::eventsourcing::detail {

inline spdlog::logger& log() { return *spdlog::default_logger_raw(); }

}  // namespace catga::eventsourcing::detail
