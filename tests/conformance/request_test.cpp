// Conformance: commands sent through one transport instance are handled by
// a mediator serving them through another; errors travel back.
#include <doctest/doctest.h>

#include "conformance_support.hpp"

using namespace conformance;

TEST_CASE("a command sent by one mediator is handled by another serving it; its error comes back") {
  auto broker = make_broker();
  Node server(*broker, "calc");
  Node client(*broker, "client");
  server.mediator.handle<Add>([](const Add& add) -> catga::Result<int> {
    if (add.a < 0) return catga::make_error("negative", "only natural numbers", false);
    return add.a + add.b;
  });
  auto serving = server.mediator.serve<Add>("calc");
  REQUIRE(serving);
  client.mediator.route_remote<Add>();
  client.mediator.route_remote<Refund>();

  auto sum = client.mediator.send(Add{2, 3});
  REQUIRE(sum);
  CHECK(*sum == 5);

  auto refused = client.mediator.send(Add{-1, 3});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == "negative");
  CHECK(refused.error().message == "only natural numbers");
  CHECK_FALSE(refused.error().retryable);

  auto nobody = client.mediator.send(Refund{"r-1"});
  REQUIRE_FALSE(nobody);
  CHECK(nobody.error().code == catga::errc::no_handler);
}
