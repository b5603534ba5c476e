#pragma once
// open_library(): initialises nats.c once per process, before catga's first
// connection, with the lock spin count catga chooses.

#include <cstdint>

namespace catga::nats::detail {

// nats.c's mutexes spin (trylock) this many times before they block. nats.c
// spins 2,000 times by default; catga asks for 0: its threads (handlers,
// fetchers, servers, nats.c's own) outnumber the cores of a small pod, and
// on this project's 2-core machine the spinning was 10 % of the sample's
// CPU at saturation (BENCHMARKS.md, issue 26). CATGA_NATS_LOCK_SPIN=<n>
// overrides it (-1: nats.c's default).
constexpr std::int64_t kDefaultLockSpin = 0;

// nats_Open with that spin count, once; later calls return the first
// answer. nats.c keeps the spin count of whoever opens it first: an
// application that calls nats_Open itself before catga keeps its own.
bool open_library() noexcept;

}  // namespace catga::nats::detail
