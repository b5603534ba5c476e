// `dispatch` benchmark: the cost of the mediator on top of a direct call.
// Prints one JSON line; see BENCHMARKS.md for the fields and recorded runs.

#include <catga/mediator.hpp>
#include <catga/pipeline.hpp>
#include <cstdio>
#include <functional>

#include "bench_util.hpp"

namespace bench_msgs {
struct Add {
  int x;
  int y;
};
CATGA_COMMAND(Add, int, x, y)

struct Total {
  int id;
};
CATGA_QUERY(Total, int, id)

struct Added {
  int sum;
};
CATGA_EVENT(Added, sum)
}  // namespace bench_msgs

using namespace bench_msgs;
using catga::bench::allocs_per_call;
using catga::bench::keep;
using catga::bench::ns_per_call;

int main() {
  int sink = 0;
  auto add = [](const Add& a) { return a.x + a.y; };

  // Baseline: the same handler through a std::function, in the same run.
  std::function<int(const Add&)> direct = add;
  const Add cmd{1, 2};
  const double direct_ns = ns_per_call([&] { keep(direct(cmd)); });

  catga::Mediator plain;
  plain.handle<Add>(add);
  plain.handle<Total>([](const Total& t) { return t.id; });
  for (int i = 0; i < 3; ++i) plain.on<Added>([&sink](const Added& e) { sink += e.sum; });

  auto send = [&] { keep(plain.send(cmd)); };
  const double send_ns = ns_per_call(send);
  const double send_allocs = allocs_per_call(send);
  const double query_ns = ns_per_call([&] { keep(plain.query(Total{7})); });
  const double publish_ns = ns_per_call([&] { keep(plain.publish(Added{1})); });
  const double publish_allocs = allocs_per_call([&] { keep(plain.publish(Added{1})); });

  // validation + retry + in-memory idempotency, logging off.
  catga::Mediator piped;
  piped.handle<Add>(add);
  auto validation = std::make_shared<catga::ValidationBehavior>();
  validation->add<Add>([](const Add& a, catga::ValidationErrors& e) {
    if (a.x < 0) e.add("x", "must not be negative");
  });
  auto store = std::make_shared<catga::InMemoryIdempotencyStore>();
  piped.use(validation);
  piped.use(std::make_shared<catga::RetryBehavior>());
  piped.use(std::make_shared<catga::IdempotencyBehavior>(store));
  const double send3_ns = ns_per_call([&] { keep(piped.send(cmd)); }, 300'000, 5);
  const double send3_allocs = allocs_per_call([&] { keep(piped.send(cmd)); }, 30'000);

  std::printf(
      "{\"bench\":\"dispatch\",\"direct_ns\":%.1f,\"send_ns\":%.1f,\"send_allocs\":%.2f,"
      "\"send_3behaviors_ns\":%.1f,\"send_3behaviors_allocs\":%.2f,\"publish_3handlers_ns\":%.1f,"
      "\"publish_3handlers_allocs\":%.2f,\"query_ns\":%.1f}\n",
      direct_ns, send_ns, send_allocs, send3_ns, send3_allocs, publish_ns, publish_allocs, query_ns);
  keep(sink);
  return 0;
}
