#pragma once
// Messages and synchronisation helpers shared by the in-memory transport tests.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "catga/mediator.hpp"
#include "catga/transport/in_memory.hpp"

namespace tt {

struct OrderPlaced {
  std::string order_id;
  int amount = 0;
};
CATGA_EVENT(OrderPlaced, order_id, amount)

struct OrderShipped {
  std::string order_id;
};
CATGA_EVENT(OrderShipped, order_id)

struct GetPrice {
  std::string sku;
};
CATGA_QUERY(GetPrice, double, sku)

struct Reserve {
  std::string sku;
  int qty = 0;
};
CATGA_COMMAND(Reserve, void, sku, qty)

// Generous: the machine may be loaded; waits end as soon as the condition holds.
inline constexpr std::chrono::seconds kWait{30};
inline constexpr std::chrono::milliseconds kWaitMs{30'000};

// Values recorded by handlers, with a wait for "at least n recorded".
template <class T>
class Recorder {
 public:
  void add(T value) {
    {
      std::lock_guard lk(mu_);
      items_.push_back(std::move(value));
    }
    cv_.notify_all();
  }
  bool wait_size(std::size_t n, std::chrono::seconds timeout = kWait) const {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return items_.size() >= n; });
  }
  std::vector<T> items() const {
    std::lock_guard lk(mu_);
    return items_;
  }
  std::size_t size() const {
    std::lock_guard lk(mu_);
    return items_.size();
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<T> items_;
};

// A one-shot signal: wait() blocks until open() was called.
class Gate {
 public:
  void open() {
    {
      std::lock_guard lk(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  bool wait(std::chrono::seconds timeout = kWait) const {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return open_; });
  }
  bool is_open() const {
    std::lock_guard lk(mu_);
    return open_;
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool open_ = false;
};

// For conditions nothing signals (transport statistics): polls until true.
inline bool eventually(const std::function<bool()>& condition, std::chrono::seconds timeout = kWait) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Subscribe options without designated initializers: SubscribeOptions::retry
// has no default member initializer, so `{.group = "g"}` trips
// -Wmissing-field-initializers.
inline catga::SubscribeOptions opts(std::string group, std::size_t workers = 1, catga::RetryPolicy retry = {}) {
  catga::SubscribeOptions o;
  o.group = std::move(group);
  o.retry = std::move(retry);
  o.workers = workers;
  return o;
}

// Headers of a well-formed OrderPlaced, for publish_raw.
inline catga::Headers order_headers(std::string_view msg_id, std::string_view type = "OrderPlaced") {
  catga::Headers h;
  h.set(catga::wire::kMsgId, msg_id);
  h.set(catga::wire::kType, type);
  h.set(catga::wire::kContentType, catga::wire::kJson);
  return h;
}

}  // namespace tt
