#pragma once
// The library's own code names the status mapping detail::to_error; it is
// public, for code that calls nats.c itself (catga/nats/native/error.hpp).

#include "catga/nats/native/error.hpp"

namespace catga::nats::detail {

using native::Surface;
using native::to_error;

}  // namespace catga::nats::detail
