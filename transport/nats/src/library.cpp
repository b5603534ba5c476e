#include "library.hpp"

#include <nats/nats.h>

#include <charconv>
#include <cstdlib>
#include <cstring>

#include "log.hpp"

namespace catga::nats::detail {

namespace {

std::int64_t lock_spin() noexcept {
  const char* value = std::getenv("CATGA_NATS_LOCK_SPIN");
  if (value == nullptr || *value == '\0') return kDefaultLockSpin;
  std::int64_t n = 0;
  const char* end = value + std::strlen(value);
  const auto [at, ec] = std::from_chars(value, end, n);
  if (ec != std::errc() || at != end || n < -1) {
    log().warn("catga.nats: CATGA_NATS_LOCK_SPIN='{}' is not a count (-1 or more); using {}", value,
               kDefaultLockSpin);
    return kDefaultLockSpin;
  }
  return n;
}

}  // namespace

bool open_library() noexcept {
  static const bool opened = nats_Open(lock_spin()) == NATS_OK;
  return opened;
}

}  // namespace catga::nats::detail
