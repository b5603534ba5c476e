#pragma once
// Where catga::nats logs: spdlog's default logger at the time of the call,
// lines prefixed "catga.nats". Credentials never reach a log line (URLs go
// through redact_url).

#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

namespace catga::nats::detail {

inline spdlog::logger& log() { return *spdlog::default_logger_raw(); }

// "nats://user:secret@host:4222" → "nats://***@host:4222".
std::string redact_url(std::string_view url);

}  // namespace catga::nats::detail
