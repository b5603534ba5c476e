// Uses an installed catga: declares messages, registers handlers, dispatches,
// and checks the results. Exit code 0 on success.

#include <catga/mediator.hpp>
#include <catga/version.hpp>

#include <cstdio>
#include <memory>
#include <string>

#if defined(CATGA_HAS_PIPELINE)
#include <catga/pipeline.hpp>
#endif
#if defined(CATGA_HAS_TRANSPORT)
#include <catga/transport/in_memory.hpp>

#include <atomic>
#include <chrono>
#endif

namespace shop {
struct PlaceOrder {
  std::string customer;
  int quantity = 0;
};
CATGA_COMMAND(PlaceOrder, std::string, customer, quantity)

struct OrderPlaced {
  std::string order_id;
};
CATGA_EVENT(OrderPlaced, order_id)
}  // namespace shop

namespace {

int failures = 0;

void expect(bool ok, const char* what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
  if (!ok) ++failures;
}

}  // namespace

int main() {
#if defined(CATGA_EXPECT_VERSION)
  expect(catga::version_string == CATGA_EXPECT_VERSION, "catga/version.hpp is the package's version");
#endif
  expect(catga::library_version() == catga::version_string, "the library linked is the headers' version");
  static_assert(CATGA_VERSION_NUMBER ==
                CATGA_VERSION_MAJOR * 10000 + CATGA_VERSION_MINOR * 100 + CATGA_VERSION_PATCH);

  catga::Mediator mediator;
  mediator.handle<shop::PlaceOrder>([](const shop::PlaceOrder& c) { return c.customer + "-order"; });

  auto placed = mediator.send(shop::PlaceOrder{"alice", 2});
  expect(placed.ok() && *placed == "alice-order", "send returns the handler's result");

  auto unknown = catga::Mediator{}.send(shop::PlaceOrder{"bob", 1});
  expect(!unknown && unknown.error().code == catga::errc::no_handler, "a missing handler is an error");

#if defined(CATGA_HAS_PIPELINE)
  auto validation = std::make_shared<catga::ValidationBehavior>();
  validation->add<shop::PlaceOrder>([](const shop::PlaceOrder& c, catga::ValidationErrors& e) {
    if (c.quantity <= 0) e.add("quantity", "must be positive");
  });
  mediator.use(validation);
  auto rejected = mediator.send(shop::PlaceOrder{"carol", 0});
  expect(!rejected && rejected.error().code == catga::errc::validation, "catga::pipeline validation rejects");
#endif

#if defined(CATGA_HAS_TRANSPORT)
  {
    catga::InMemoryTransport transport;
    mediator.attach(transport);
    std::atomic<int> received{0};
    catga::SubscribeOptions options;
    options.group = "consumer";
    auto sub = mediator.subscribe<shop::OrderPlaced>(options, [&](const shop::OrderPlaced&) { ++received; });
    expect(sub.ok(), "subscribe to the in-memory transport");
    expect(mediator.publish(shop::OrderPlaced{"o-1"}).ok(), "publish through the in-memory transport");
    expect(transport.wait_idle(std::chrono::seconds(30)) && received == 1, "the subscriber got the event");
    mediator.detach();
  }
#endif

  return failures == 0 ? 0 : 1;
}
