// A responder holds a bounded number of requests (issue 21): beyond
// JetStreamOptions::serve_bound() callers get a retryable `overloaded` at
// once instead of waiting in an unbounded queue until their deadline.
#include <doctest/doctest.h>
#include <nats/nats.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "catga/wire.hpp"
#include "nats_server.hpp"
#include "raw_nats.hpp"
#include "test_messages.hpp"
#include "wait_for.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// Holds handlers until opened (or 20 s, so a failing test still ends).
class Gate {
 public:
  void open() {
    {
      std::lock_guard lk(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, 20s, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Replies to the burst, counted by kind on nats.c's thread.
struct Replies {
  std::atomic<int> ok{0};
  std::atomic<int> overloaded{0};
  std::atomic<int> other{0};
  std::atomic<bool> overloaded_retryable{true};
};

void on_reply(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto& r = *static_cast<Replies*>(closure);
  const std::string_view body(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
  auto decoded = catga::wire::decode_reply(body);
  if (decoded) {
    r.ok++;
  } else if (decoded.error().code == catga::errc::overloaded) {
    r.overloaded++;
    if (!decoded.error().retryable) r.overloaded_retryable = false;
  } else {
    r.other++;
  }
  natsMsg_Destroy(msg);
}

// Sends `n` requests of nt::Slow at once, as `n` concurrent callers would,
// each with its own reply subject under `inbox`.
void send_burst(natsConnection* nc, const std::string& prefix, const std::string& inbox, int n) {
  const std::string subject = catga::wire::command_subject(prefix, "Slow");
  const std::string body = R"({"ms":1})";
  for (int i = 0; i < n; ++i) {
    natsMsg* m = nullptr;
    const std::string reply = inbox + "." + std::to_string(i);
    catga::test::check(natsMsg_Create(&m, subject.c_str(), reply.c_str(), body.data(), static_cast<int>(body.size())),
                       "natsMsg_Create");
    catga::Context ctx = catga::Context::root();
    catga::wire::write_headers(ctx, "Slow", [&](std::string_view k, std::string_view v) {
      natsMsgHeader_Set(m, std::string(k).c_str(), std::string(v).c_str());
    });
    const natsStatus s = natsConnection_PublishMsg(nc, m);
    natsMsg_Destroy(m);
    catga::test::check(s, "publish request");
  }
  catga::test::check(natsConnection_FlushTimeout(nc, 5000), "flush");
}

}  // namespace

TEST_CASE("a burst far beyond the responder's bound: each caller gets the answer or a quick retryable overloaded") {
  catga::test::NatsServer server;
  // Library defaults for serving (4 workers, bound 32 x 4); only the handler is slow.
  auto service_t = nt::make_transport(server, nt::js_options(), "slow-service");
  const std::size_t bound = service_t->options().serve_bound();
  REQUIRE(bound == 128);
  catga::Mediator service;
  service.attach(*service_t);
  Gate gate;
  std::atomic<int> calls{0};
  service.handle<nt::Slow>([&](const nt::Slow& q) {
    calls++;
    gate.wait();
    return q.ms;
  });
  auto serving = service.serve<nt::Slow>("slow");
  REQUIRE(serving);
  struct OpenAtExit {
    Gate& g;
    ~OpenAtExit() { g.open(); }
  } open_at_exit{gate};

  // 3,000 callers at once (the burst that left 2,551 unanswered before).
  constexpr int kBurst = 3000;
  catga::test::RawNats callers(server.url());
  Replies replies;
  natsSubscription* sub = nullptr;
  catga::test::check(natsConnection_Subscribe(&sub, callers.nc(), "burst.inbox.>", on_reply, &replies), "subscribe");
  natsSubscription_SetPendingLimits(sub, -1, -1);
  const auto t0 = Clock::now();
  send_burst(callers.nc(), "catga", "burst.inbox", kBurst);

  // While the handlers are held nothing finishes, so every request the
  // service took is in flight at once: exactly `bound` of them, the others
  // refused at once.
  const int refused = kBurst - static_cast<int>(bound);
  const bool all_refused = catga::test::wait_for([&] { return replies.overloaded.load() >= refused; }, 10s);
  const auto refused_in = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  std::printf("serve bound: burst=%d bound=%zu overloaded=%d in %lld ms, ok=%d other=%d, handler calls=%d\n", kBurst,
              bound, replies.overloaded.load(), static_cast<long long>(refused_in.count()), replies.ok.load(),
              replies.other.load(), calls.load());
  REQUIRE(all_refused);
  CHECK(refused_in < 3s);
  CHECK(replies.overloaded_retryable.load());
  CHECK(replies.ok.load() == 0);
  CHECK(calls.load() == static_cast<int>(service_t->options().serve_workers));

  // A catga caller meets the same: `overloaded`, retryable, at once.
  auto client_t = nt::make_transport(server, nt::js_options(), "client");
  catga::Mediator client;
  client.attach(*client_t);
  client.route_remote<nt::Slow>();
  const auto c0 = Clock::now();
  auto busy = client.query(nt::Slow{7});
  REQUIRE_FALSE(busy);
  CHECK(busy.error().code == catga::errc::overloaded);
  CHECK(busy.error().retryable);
  CHECK(Clock::now() - c0 < 1s);

  // Opened: the requests it took are answered, no caller is left without a reply.
  gate.open();
  REQUIRE(catga::test::wait_for([&] { return replies.ok.load() + replies.overloaded.load() >= kBurst; }, 10s));
  std::this_thread::sleep_for(100ms);  // anything more would show here
  CHECK(replies.ok.load() == static_cast<int>(bound));
  CHECK(replies.overloaded.load() == refused);
  CHECK(replies.other.load() == 0);
  CHECK(calls.load() == static_cast<int>(bound));  // never more taken in than the bound

  // After the burst the service answers normally.
  for (int i = 0; i < 20; ++i) {
    auto r = client.query(nt::Slow{i});
    REQUIRE(r);
    CHECK(*r == i);
  }
  natsSubscription_Unsubscribe(sub);
  natsSubscription_Destroy(sub);
}
