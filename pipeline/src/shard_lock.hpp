#pragma once
// ShardLock: the lock of one InMemoryIdempotencyStore shard. Private to
// catga::pipeline.

#include <atomic>

namespace catga::idempotency_detail {

// The lock of a shard. Uncontended lock and unlock are one inline atomic
// instruction each (std::mutex costs two pthread calls per pair, a third of
// the store's work per message); contended lockers spin briefly, then sleep
// in the kernel through C++20 atomic wait (a futex on Linux).
// States: 0 free, 1 held, 2 held and someone may sleep.
class ShardLock {
 public:
  void lock() noexcept {
    int expected = 0;
    if (!state_.compare_exchange_strong(expected, 1, std::memory_order_acquire, std::memory_order_relaxed))
        [[unlikely]] {
      lock_contended(expected);
    }
  }
  void unlock() noexcept {
    if (state_.exchange(0, std::memory_order_release) == 2) [[unlikely]] state_.notify_one();
  }

 private:
  [[gnu::noinline]] void lock_contended(int seen) noexcept {
    // Holders keep the lock for well under a microsecond: a short spin
    // usually wins without a system call.
    for (int spin = 0; spin < 40 && seen == 1; ++spin) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
      seen = 0;
      if (state_.compare_exchange_weak(seen, 1, std::memory_order_acquire, std::memory_order_relaxed)) return;
    }
    if (seen != 2) seen = state_.exchange(2, std::memory_order_acquire);
    while (seen != 0) {
      state_.wait(2, std::memory_order_relaxed);
      seen = state_.exchange(2, std::memory_order_acquire);
    }
  }

  std::atomic<int> state_{0};
};

}  // namespace catga::idempotency_detail
