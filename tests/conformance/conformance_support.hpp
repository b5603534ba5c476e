#pragma once
// Messages and helpers of the transport conformance cases.

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "broker.hpp"
#include "catga/mediator.hpp"
#include "wait_for.hpp"

namespace conformance {

struct Placed {
  std::string id;
  int n = 0;
};
CATGA_EVENT(Placed, id, n)

// Keyed: an ordered group handles one key's events in publish order.
struct Moved {
  std::string key;
  int n = 0;
};
CATGA_EVENT(Moved, key, n)
CATGA_ORDERING_KEY(Moved, key)

struct Add {
  int a = 0;
  int b = 0;
};
CATGA_COMMAND(Add, int, a, b)

// Served by nobody.
struct Refund {
  std::string id;
};
CATGA_COMMAND(Refund, void, id)

// Generous: a loaded machine gets time; waits end as soon as the outcome is there.
inline constexpr std::chrono::seconds kWait{60};

// One process: a transport instance and the mediator using it. Declared
// before its subscriptions, so they stop first.
struct Node {
  Node(Broker& broker, const std::string& name) : transport(broker.connect(name)) { mediator.attach(*transport); }
  std::shared_ptr<catga::Transport> transport;
  catga::Mediator mediator;
};

// The library's default subscription options, with a group.
inline catga::SubscribeOptions group(std::string name) {
  catga::SubscribeOptions o;
  o.group = std::move(name);
  return o;
}

inline catga::Context with_id(const std::string& id) {
  auto ctx = catga::Context::root();
  ctx.message_id = *catga::MessageId::parse(id);
  return ctx;
}

// How often each id was handled, by whom.
class Ledger {
 public:
  void add(const std::string& id, const std::string& by = {}) {
    std::lock_guard lock(mu_);
    ++count_[id];
    ++by_[by];
    ++total_;
  }
  int total() const {
    std::lock_guard lock(mu_);
    return total_;
  }
  std::size_t distinct() const {
    std::lock_guard lock(mu_);
    return count_.size();
  }
  int max_count() const {
    std::lock_guard lock(mu_);
    int m = 0;
    for (const auto& [id, n] : count_) m = std::max(m, n);
    return m;
  }
  int count(const std::string& id) const {
    std::lock_guard lock(mu_);
    auto it = count_.find(id);
    return it == count_.end() ? 0 : it->second;
  }
  int by(const std::string& who) const {
    std::lock_guard lock(mu_);
    auto it = by_.find(who);
    return it == by_.end() ? 0 : it->second;
  }
  bool wait_total(int n, std::chrono::milliseconds timeout = kWait) const {
    return catga::test::wait_for([&] { return total() >= n; }, timeout);
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, int> count_;
  std::map<std::string, int> by_;
  int total_ = 0;
};

}  // namespace conformance
