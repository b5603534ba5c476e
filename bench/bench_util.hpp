#pragma once
// Tiny measuring kit for the benchmarks: best-of-N timing and allocation
// counting (the binary replaces global operator new; see alloc_counter.cpp).

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

// Nanoseconds per call of f, the best of `rounds` runs of `iterations` calls.
// Best-of filters out scheduler noise on a shared 2-core machine.
template <class F>
double ns_per_call(F&& f, std::size_t iterations = 1'000'000, int rounds = 7) {
  for (std::size_t i = 0; i < iterations / 10; ++i) f();  // warm up
  double best = 1e300;
  for (int r = 0; r < rounds; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < iterations; ++i) f();
    const auto t1 = std::chrono::steady_clock::now();
    const double ns = std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(iterations);
    if (ns < best) best = ns;
  }
  return best;
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
