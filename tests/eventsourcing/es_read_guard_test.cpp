// Reads cut short while the server is still sending: a read asks for every
// commit of the stream in one pull request and may stop after the first
// (time travel, a commit it cannot decode) while the rest is on its way.
// nats.c before 3.10 can deliver to a subscription destroyed meanwhile
// (nats.c issue 637: the read thread looks it up, the reader frees it, the
// read thread locks it), so the store lets go of it through
// Connection::Impl::retire. Large commits keep the read thread busy in that
// window. The `asan` test runs this under AddressSanitizer with freed memory
// overwritten (tests/support/run_sanitized.sh), so a late delivery crashes
// even though nats.c itself is not instrumented: without the guard, each case
// fails within seconds.
#include <doctest/doctest.h>

#include <nats/nats.h>

#include <chrono>
#include <string>

#include "es_test_support.hpp"
#include "raw_nats.hpp"

using namespace catga::eventsourcing;
using namespace std::chrono_literals;

namespace {

// Under the server's 1 MB max_payload, large enough that copying one keeps
// nats.c's read thread busy for a while.
constexpr std::size_t kLargeEvent = 512 * 1024;
constexpr int kLargeCommits = 12;
// Reads per case: enough to land many times in nats.c's window.
constexpr int kReads = 150;
constexpr auto kBudget = 60s;  // stop earlier on a slow machine

}  // namespace

TEST_CASE("a time-travel read that stops at the first commit while the server still sends the rest") {
  catga::test::NatsServer server;
  auto store = est::store_on(est::connect(server));
  const StreamId acc{"Account", "big-1"};

  // A small first commit (versions 1-2), then large ones.
  auto at = store->append(acc, Position{}, {EventData::of(est::Deposited{1}), EventData::of(est::Deposited{2})})
                .value()
                .position;
  for (int i = 0; i < kLargeCommits; ++i) {
    at = store->append(acc, at, {EventData::of(est::Renamed{std::string(kLargeEvent, static_cast<char>('a' + i))})})
             .value()
             .position;
  }
  REQUIRE(at.version == 2 + kLargeCommits);

  const auto until = std::chrono::steady_clock::now() + kBudget;
  int reads = 0;
  for (; reads < kReads && std::chrono::steady_clock::now() < until; ++reads) {
    auto r = store->read_stream(acc, {.to_version = 1});
    REQUIRE(r);
    REQUIRE(r->commits.size() == 1);
    REQUIRE(r->commits[0].events.size() == 1);
    CHECK(r->end.version == 1);
  }
  MESSAGE(reads << " cut reads");
  CHECK(reads >= 20);
  // The connection is still sound: a whole read gets everything.
  auto all = store->read(acc).value();
  REQUIRE(all.size() == 1 + kLargeCommits);
  CHECK(all.back().events.at(0).as<est::Renamed>().value().name.size() == kLargeEvent);
}

TEST_CASE("a read that fails on a commit it cannot decode while the server still sends the rest") {
  catga::test::NatsServer server;
  auto store = est::store_on(est::connect(server));
  const StreamId acc{"Account", "bad-1"};

  // Written past the store, as a broken producer would: not a commit, then
  // large messages the read never gets to.
  catga::test::RawNats raw(server.url());
  const std::string subject = store->options().subject(acc);
  catga::test::check(js_Publish(nullptr, raw.js(), subject.c_str(), "not a commit", 12, nullptr, nullptr),
                     "publish the broken commit");
  const std::string large(kLargeEvent, 'x');
  for (int i = 0; i < kLargeCommits; ++i) {
    catga::test::check(js_Publish(nullptr, raw.js(), subject.c_str(), large.data(), static_cast<int>(large.size()),
                                  nullptr, nullptr),
                       "publish a large message");
  }

  const auto until = std::chrono::steady_clock::now() + kBudget;
  int reads = 0;
  for (; reads < kReads && std::chrono::steady_clock::now() < until; ++reads) {
    auto r = store->read(acc);
    REQUIRE_FALSE(r);
    REQUIRE(r.error().code == "malformed");
  }
  MESSAGE(reads << " failed reads");
  CHECK(reads >= 20);
  // The store still works on another stream of the same connection.
  const StreamId ok{"Account", "ok-1"};
  REQUIRE(store->append(ok, Position{}, {EventData::of(est::Deposited{5})}));
  CHECK(store->read(ok).value().size() == 1);
}
