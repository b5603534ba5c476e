#pragma once
// wait_for: polls a condition until it holds or a generous timeout passes.

#include <chrono>
#include <thread>

namespace catga::test {

// True as soon as `pred()` holds; false after `timeout`. Polls every few ms,
// so a test that works finishes fast and a loaded machine still gets time.
//
//   REQUIRE(catga::test::wait_for([&] { return seen.load() == 100; }));
template <class Pred>
bool wait_for(Pred&& pred, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace catga::test
