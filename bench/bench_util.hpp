#pragma once
// Tiny measuring kit for the benchmarks: best-of-N timing (wall clock and
// thread CPU time) and allocation counting (the binary replaces global
// operator new; see alloc_counter.cpp).

#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace catga::bench {

// Allocations made by this process so far (operator new calls).
std::uint64_t allocations() noexcept;

// Keeps `value` alive so the optimizer cannot delete the work producing it.
template <class T>
inline void keep(T const& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

// CPU time consumed by the calling thread. On a shared machine it excludes
// the time the thread waited for a core, so it is steadier than wall time.
inline double thread_cpu_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// Per-call cost: the best round by wall clock and the best by thread CPU time.
struct Timing {
  double wall_ns = 1e300;
  double cpu_ns = 1e300;
};

// Times `rounds` runs of `iterations` calls of f, after a warm-up.
// Best-of filters out scheduler noise on a shared 2-core machine.
template <class F>
Timing measure(F&& f, std::size_t iterations = 1'000'000, int rounds = 7) {
  for (std::size_t i = 0; i < iterations / 10; ++i) f();  // warm up
  Timing best;
  const auto n = static_cast<double>(iterations);
  for (int r = 0; r < rounds; ++r) {
    const double c0 = thread_cpu_ns();
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < iterations; ++i) f();
    const auto t1 = std::chrono::steady_clock::now();
    const double c1 = thread_cpu_ns();
    best.wall_ns = std::min(best.wall_ns, std::chrono::duration<double, std::nano>(t1 - t0).count() / n);
    best.cpu_ns = std::min(best.cpu_ns, (c1 - c0) / n);
  }
  return best;
}

// Nanoseconds per call of f (wall clock), the best of `rounds` runs.
template <class F>
double ns_per_call(F&& f, std::size_t iterations = 1'000'000, int rounds = 7) {
  return measure(f, iterations, rounds).wall_ns;
}

// Allocations per call of f (averaged over `iterations`, after a warm-up).
template <class F>
double allocs_per_call(F&& f, std::size_t iterations = 100'000) {
  for (std::size_t i = 0; i < 1000; ++i) f();
  const auto a0 = allocations();
  for (std::size_t i = 0; i < iterations; ++i) f();
  return static_cast<double>(allocations() - a0) / static_cast<double>(iterations);
}

}  // namespace catga::bench
