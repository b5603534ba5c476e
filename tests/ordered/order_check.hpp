#pragma once
// Reads the handling records of the ordered-group tests and checks them:
// every key's events ran in publish order (a redelivery of an event already
// handled may repeat, nothing may run before its predecessor ran), one at a
// time per key, and two members never ran the same partition at once.

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "catga/wire.hpp"

namespace ordered {

struct Record {
  std::string key;
  int n = 0;
  std::int64_t start = 0, end = 0;
  std::string member;
};

inline std::vector<Record> read_records(const std::string& path) {
  std::vector<Record> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    Record r;
    if (s >> r.key >> r.n >> r.start >> r.end >> r.member) out.push_back(std::move(r));
  }
  return out;
}

struct Verdict {
  std::size_t handled = 0;     // distinct (key, n)
  std::size_t repeats = 0;     // records beyond the first of an event
  std::size_t repeats_b = 0;   // of them, exactly-once events (odd n)
  // Of repeats_b, those whose first run was by each member: a member killed
  // (SIGKILL) between an effect and storing its outcome leaves that window
  // (docs/guarantees.md, "Exactly-once effects"); anyone else's is a defect.
  std::map<std::string, std::size_t> repeats_b_first_by;
  std::size_t missing = 0;
  std::vector<std::string> violations;  // order, per-key overlap, partition overlap (first few)
};

// `paused_member`: a member that was frozen (SIGSTOP) for at least
// `frozen_ns`; what it was running then finishes when it resumes, after
// others may have taken its partitions over. Those records (they lasted the
// whole freeze: longer than any handler runs) are left out of the "at once"
// checks, as nothing can stop a handler already running; everything it
// starts afterwards is checked.
inline Verdict check(std::vector<Record> records, int keys, int events, std::uint32_t partitions,
                     const std::string& paused_member = {}, std::int64_t frozen_ns = 0) {
  const std::string key_prefix = "k";
  auto in_flight_at_pause = [&](const Record& r) {
    return !paused_member.empty() && r.member == paused_member && r.end - r.start >= frozen_ns;
  };
  Verdict v;
  auto note = [&](std::string what) {
    if (v.violations.size() < 10) v.violations.push_back(std::move(what));
  };
  std::sort(records.begin(), records.end(), [](const Record& a, const Record& b) { return a.start < b.start; });
  std::map<std::string, std::vector<const Record*>> by_key;
  std::map<std::uint32_t, std::vector<const Record*>> by_partition;
  for (const auto& r : records) {
    by_key[r.key].push_back(&r);
    if (partitions > 0) by_partition[catga::wire::partition_of(r.key, partitions)].push_back(&r);
  }
  for (int k = 0; k < keys; ++k) {
    const std::string key = key_prefix + std::to_string(k);
    int next = 0;  // events 0..next-1 ran at least once
    std::int64_t busy_until = 0;
    for (const Record* r : by_key[key]) {
      if (r->n > next) {
        note("key " + key + ": event " + std::to_string(r->n) + " ran (by " + r->member + ") before event " +
             std::to_string(next));
      } else if (r->n < next) {
        ++v.repeats;
        if (r->n % 2 == 1) {
          ++v.repeats_b;
          const auto& runs = by_key[key];
          const auto first = std::find_if(runs.begin(), runs.end(), [&](const Record* x) { return x->n == r->n; });
          ++v.repeats_b_first_by[(*first)->member];
        }
      } else {
        ++next;
      }
      if (in_flight_at_pause(*r)) continue;
      if (r->start < busy_until) note("key " + key + ": event " + std::to_string(r->n) + " overlapped another");
      busy_until = std::max(busy_until, r->end);
    }
    v.handled += static_cast<std::size_t>(std::min(next, events));
    v.missing += static_cast<std::size_t>(std::max(events - next, 0));
  }
  // Two members at once on one partition: an interval of one member inside
  // the span another member is running there (partitions = 0: the
  // transport has none, as in memory, so only keys are checked).
  for (auto& [p, list] : by_partition) {
    std::map<std::string, std::int64_t> last_end;
    for (const Record* r : list) {
      if (in_flight_at_pause(*r)) continue;
      for (auto& [member, end] : last_end) {
        if (member != r->member && end > r->start) {
          note("partition " + std::to_string(p) + ": " + r->member + " ran " + r->key + "#" + std::to_string(r->n) +
               " while " + member + " was still running there");
        }
      }
      auto& e = last_end[r->member];
      e = std::max(e, r->end);
    }
  }
  return v;
}

inline std::string describe(const Verdict& v) {
  std::ostringstream s;
  s << "handled=" << v.handled << " missing=" << v.missing << " repeats=" << v.repeats
    << " exactly_once_repeats=" << v.repeats_b;
  for (const auto& [member, n] : v.repeats_b_first_by) s << " (" << n << " first run by " << member << ")";
  s << " violations=" << v.violations.size();
  for (const auto& x : v.violations) s << "\n  " << x;
  return s.str();
}

}  // namespace ordered
