#pragma once
// Shared pieces of the fault tests: the ledger of applied effects, the
// one-line report, publishing with retries.

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "fault_model.hpp"
#include "raw_nats.hpp"

namespace fault {

// Lines in a file (0 when it does not exist).
inline std::size_t count_lines(const std::string& path) {
  std::ifstream in(path);
  std::size_t n = 0;
  std::string line;
  while (std::getline(in, line)) ++n;
  return n;
}

// What a fault test counts.
struct Tally {
  std::uint64_t sent = 0;
  std::uint64_t delivered = 0;           // distinct sent ids whose effect was applied
  std::uint64_t lost = 0;                // sent ids never applied
  std::uint64_t duplicates_applied = 0;  // applications beyond the first
};

// Applied effects per id, from one or more processes.
class Ledger {
 public:
  void apply(const std::string& id) {
    std::lock_guard lock(mu_);
    ++applied_[id];
  }
  // The effect for a Member: records the credit's id.
  Member::Effect effect() {
    return [this](const Credit& c) { apply(c.id); };
  }
  // Adds the ids of an effects file written by a worker process (one per line).
  void add_file(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::lock_guard lock(mu_);
    while (std::getline(in, line)) {
      if (!line.empty()) ++applied_[line];
    }
  }
  std::size_t distinct() const {
    std::lock_guard lock(mu_);
    return applied_.size();
  }
  int count(const std::string& id) const {
    std::lock_guard lock(mu_);
    auto it = applied_.find(id);
    return it == applied_.end() ? 0 : it->second;
  }
  Tally tally(const std::vector<std::string>& sent) const {
    std::lock_guard lock(mu_);
    Tally t;
    t.sent = sent.size();
    for (const auto& id : sent) {
      auto it = applied_.find(id);
      if (it == applied_.end()) {
        ++t.lost;
      } else {
        ++t.delivered;
      }
    }
    for (const auto& [id, n] : applied_) t.duplicates_applied += static_cast<std::uint64_t>(n - 1);
    return t;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, int> applied_;
};

inline std::vector<std::string> credit_ids(int n) {
  std::vector<std::string> out;
  out.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) out.push_back(credit_id(i));
  return out;
}

// Prints the one report line and asserts nothing was lost or applied twice.
inline void report(const std::string& name, const Tally& t) {
  std::ostringstream line;
  line << "fault " << name << ": sent=" << t.sent << " delivered=" << t.delivered << " lost=" << t.lost
       << " duplicates_applied=" << t.duplicates_applied;
  std::cout << line.str() << std::endl;
  CHECK(t.lost == 0);
  CHECK(t.duplicates_applied == 0);
}

// Publishes credit i with its fixed id, retrying retryable failures with the
// same id (the stream keeps one copy). False on a non-retryable error.
inline bool publish_credit(catga::Mediator& m, int i, std::atomic<int>* retries = nullptr) {
  auto ctx = catga::Context::root();
  ctx.message_id = *catga::MessageId::parse(credit_id(i));
  const Credit c{credit_id(i), i};
  while (true) {
    auto s = m.publish(c, ctx);
    if (s) return true;
    if (!s.error().retryable) {
      MESSAGE("publish " << credit_id(i) << " failed: " << s.error().message);
      return false;
    }
    if (retries != nullptr) ++*retries;
  }
}

// True when the group's durable consumer has nothing pending and nothing
// unacknowledged (so no redelivery can come any more).
inline bool group_drained(const std::string& url, const std::string& durable = "ledger_Credit",
                          const std::string& stream = "CATGA_EVENTS") {
  try {
    catga::test::RawNats raw(url);
    jsConsumerInfo* ci = nullptr;
    jsErrCode jerr{};
    if (js_GetConsumerInfo(&ci, raw.js(), stream.c_str(), durable.c_str(), nullptr, &jerr) != NATS_OK) return false;
    const bool drained = ci->NumPending == 0 && ci->NumAckPending == 0;
    jsConsumerInfo_Destroy(ci);
    return drained;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace fault
