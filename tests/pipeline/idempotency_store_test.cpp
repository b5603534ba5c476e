#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <map>
#include <thread>

#include "catga/pipeline/in_memory_idempotency_store.hpp"

using namespace std::chrono_literals;
using State = catga::IdempotencyClaim::State;

namespace {

struct StoreFixture {
  std::shared_ptr<catga::ManualClock> clock = std::make_shared<catga::ManualClock>();
  catga::InMemoryIdempotencyStore store{{.max_entries = 100, .shards = 1, .clock = clock}};
};

catga::IdempotencyOutcome ok_value(int v) { return {.value = v, .error = {}}; }

}  // namespace

TEST_CASE("IdempotencyOutcome encodes as a reply body and decodes back") {
  const catga::IdempotencyOutcome value = ok_value(42);
  CHECK(catga::encode_outcome(value) == R"({"ok":true,"value":42})");
  CHECK(catga::decode_outcome(catga::encode_outcome(value)).value() == value);

  const catga::IdempotencyOutcome nothing{};
  CHECK(catga::encode_outcome(nothing) == R"({"ok":true})");
  CHECK(catga::decode_outcome(catga::encode_outcome(nothing)).value() == nothing);

  const catga::IdempotencyOutcome failed{.value = {}, .error = catga::Error{"out_of_stock", "none left", false}};
  auto back = catga::decode_outcome(catga::encode_outcome(failed));
  REQUIRE(back.ok());
  CHECK(*back == failed);

  auto bad = catga::decode_outcome("{\"value\":1}");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == catga::errc::malformed);
  CHECK_FALSE(catga::decode_outcome("not json").ok());
}

TEST_CASE("InMemoryIdempotencyStore: claim, in progress, complete, completed") {
  StoreFixture f;
  auto c1 = f.store.claim("k", 1min).value();
  CHECK(c1.state == State::claimed);
  auto c2 = f.store.claim("k", 1min).value();
  CHECK(c2.state == State::in_progress);
  REQUIRE(f.store.complete("k", c1.token, ok_value(7), 1h).ok());
  auto c3 = f.store.claim("k", 1min).value();
  CHECK(c3.state == State::completed);
  CHECK(c3.outcome == ok_value(7));
  CHECK(f.store.size() == 1);
  // Completing twice, or with a foreign token, is refused.
  auto again = f.store.complete("k", c1.token, ok_value(8), 1h);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code == catga::errc::conflict);
  CHECK(f.store.claim("k", 1min).value().outcome == ok_value(7));
}

// A key of 32 lowercase hex digits is held as the 128 bits it spells (read
// by the shared parser, catga::parse_lower_hex_u64): the id path finds it by
// those bits. The same digits in uppercase are not a generated id's text:
// another key.
TEST_CASE("InMemoryIdempotencyStore: 32 lowercase hex digits are the id path's entry; uppercase is another key") {
  StoreFixture f;
  auto lower = f.store.claim("00000000000000ab0123456789abcdef", 1min).value();
  REQUIRE(lower.state == State::claimed);
  CHECK(f.store.claim("00000000000000AB0123456789ABCDEF", 1min).value().state == State::claimed);
  catga::IdempotencyIdPath* ids = f.store.id_path();
  REQUIRE(ids != nullptr);
  CHECK(ids->claim_id(0xab, 0x0123456789abcdefULL, 1min).state == State::in_progress);
  REQUIRE(f.store.complete("00000000000000ab0123456789abcdef", lower.token, ok_value(5), 1h).ok());
  CHECK(ids->claim_id(0xab, 0x0123456789abcdefULL, 1min).state == State::completed);
  CHECK(f.store.size() == 2);
}

TEST_CASE("InMemoryIdempotencyStore: long keys work like short ones") {
  StoreFixture f;
  const std::string long_key = "consumer-group-with-a-rather-long-name:" + std::string(64, 'x');
  const std::string other = long_key + "y";
  auto c = f.store.claim(long_key, 1min).value();
  REQUIRE(c.state == State::claimed);
  CHECK(f.store.claim(other, 1min).value().state == State::claimed);
  REQUIRE(f.store.complete(long_key, c.token, ok_value(3), 1h).ok());
  CHECK(f.store.claim(long_key, 1min).value().outcome == ok_value(3));
  CHECK(f.store.claim(other, 1min).value().state == State::in_progress);
}

TEST_CASE("InMemoryIdempotencyStore: a re-claimed expired key does not keep the old outcome") {
  StoreFixture f;
  const catga::IdempotencyOutcome failed{.value = {}, .error = catga::Error{"rejected", "no", false}};
  auto c1 = f.store.claim("k", 1min).value();
  REQUIRE(f.store.complete("k", c1.token, failed, 1min).ok());
  CHECK(f.store.claim("k", 1min).value().outcome == failed);
  f.clock->advance(2min);
  auto c2 = f.store.claim("k", 1min).value();
  REQUIRE(c2.state == State::claimed);
  REQUIRE(f.store.complete("k", c2.token, catga::IdempotencyOutcome{}, 1min).ok());
  CHECK(f.store.claim("k", 1min).value().outcome == catga::IdempotencyOutcome{});
}

TEST_CASE("InMemoryIdempotencyStore: release forgets the claim; stale tokens cannot release") {
  StoreFixture f;
  auto c1 = f.store.claim("k", 1min).value();
  CHECK(f.store.release("k", c1.token + 1).ok());  // not ours: no-op
  CHECK(f.store.claim("k", 1min).value().state == State::in_progress);
  CHECK(f.store.release("k", c1.token).ok());
  CHECK(f.store.size() == 0);
  auto c2 = f.store.claim("k", 1min).value();
  CHECK(c2.state == State::claimed);
  CHECK(c2.token != c1.token);
}

TEST_CASE("InMemoryIdempotencyStore: outcomes expire after their TTL") {
  StoreFixture f;
  auto c = f.store.claim("k", 1min).value();
  REQUIRE(f.store.complete("k", c.token, ok_value(1), 10min).ok());
  f.clock->advance(9min);
  CHECK(f.store.claim("k", 1min).value().state == State::completed);
  f.clock->advance(1min);
  CHECK(f.store.claim("k", 1min).value().state == State::claimed);
}

TEST_CASE("InMemoryIdempotencyStore: purge_expired drops expired outcomes only") {
  StoreFixture f;
  for (const char* k : {"a", "b"}) {
    auto c = f.store.claim(k, 1min).value();
    REQUIRE(f.store.complete(k, c.token, ok_value(1), std::string_view(k) == "a" ? 1min : 1h).ok());
  }
  (void)f.store.claim("c", 1h).value();
  f.clock->advance(2min);
  f.store.purge_expired();
  CHECK(f.store.size() == 2);
  CHECK(f.store.claim("b", 1min).value().state == State::completed);
  CHECK(f.store.claim("c", 1min).value().state == State::in_progress);
}

TEST_CASE("InMemoryIdempotencyStore: a claim past its lease can be taken over; the stale owner loses") {
  StoreFixture f;
  auto old_owner = f.store.claim("k", 30s).value();
  f.clock->advance(31s);
  auto new_owner = f.store.claim("k", 30s).value();
  REQUIRE(new_owner.state == State::claimed);
  CHECK_FALSE(f.store.complete("k", old_owner.token, ok_value(1), 1h).ok());
  CHECK(f.store.complete("k", new_owner.token, ok_value(2), 1h).ok());
  CHECK(f.store.claim("k", 30s).value().outcome == ok_value(2));
}

TEST_CASE("InMemoryIdempotencyStore: the size bound evicts the oldest completed entries, never claims") {
  auto clock = std::make_shared<catga::ManualClock>();
  catga::InMemoryIdempotencyStore store({.max_entries = 3, .shards = 1, .clock = clock});
  auto busy = store.claim("running", 1h).value();  // in progress the whole time
  for (const char* k : {"a", "b", "c", "d"}) {
    auto c = store.claim(k, 1h).value();
    REQUIRE(c.state == State::claimed);
    REQUIRE(store.complete(k, c.token, ok_value(1), 1h).ok());
  }
  CHECK(store.size() == 3);
  CHECK(store.claim("running", 1h).value().state == State::in_progress);
  CHECK(store.claim("d", 1h).value().state == State::completed);
  CHECK(store.claim("c", 1h).value().state == State::completed);
  // "a" and "b" were the oldest completed: gone, so they can be claimed again.
  CHECK(store.claim("a", 1h).value().state == State::claimed);
  CHECK(store.complete("running", busy.token, ok_value(2), 1h).ok());
}

TEST_CASE("InMemoryIdempotencyStore: claims in progress may pass the bound") {
  catga::InMemoryIdempotencyStore store({.max_entries = 2, .shards = 1});
  for (const char* k : {"a", "b", "c", "d"}) CHECK(store.claim(k, 1h).value().state == State::claimed);
  CHECK(store.size() == 4);
}

TEST_CASE("InMemoryIdempotencyStore: wait returns the outcome once the owner completes") {
  catga::InMemoryIdempotencyStore store;
  auto owner = store.claim("k", 1min).value();
  std::atomic<bool> waiting{false};
  catga::IdempotencyClaim seen;
  std::thread waiter([&] {
    waiting = true;
    seen = store.wait("k", 1min, std::chrono::steady_clock::now() + 30s).value();
  });
  while (!waiting) std::this_thread::yield();
  REQUIRE(store.complete("k", owner.token, ok_value(5), 1h).ok());
  waiter.join();
  CHECK(seen.state == State::completed);
  CHECK(seen.outcome == ok_value(5));
}

TEST_CASE("InMemoryIdempotencyStore: wait claims the key once the owner releases it") {
  catga::InMemoryIdempotencyStore store;
  auto owner = store.claim("k", 1min).value();
  std::atomic<bool> waiting{false};
  catga::IdempotencyClaim seen;
  std::thread waiter([&] {
    waiting = true;
    seen = store.wait("k", 1min, std::chrono::steady_clock::now() + 30s).value();
  });
  while (!waiting) std::this_thread::yield();
  REQUIRE(store.release("k", owner.token).ok());
  waiter.join();
  CHECK(seen.state == State::claimed);
  CHECK(seen.token != owner.token);
}

TEST_CASE("InMemoryIdempotencyStore: wait gives up at the deadline") {
  catga::InMemoryIdempotencyStore store;
  (void)store.claim("k", 1h).value();
  auto passed = store.wait("k", 1h, std::chrono::steady_clock::now()).value();
  CHECK(passed.state == State::in_progress);
  auto soon = store.wait("k", 1h, std::chrono::steady_clock::now() + 20ms).value();
  CHECK(soon.state == State::in_progress);
}

TEST_CASE("InMemoryIdempotencyStore: wait with a manual clock is bounded by real time too") {
  StoreFixture f;  // the manual clock never moves by itself
  (void)f.store.claim("k", 1h).value();
  auto r = f.store.wait("k", 1h, f.clock->now() + 20ms).value();
  CHECK(r.state == State::in_progress);
}

TEST_CASE("InMemoryIdempotencyStore: concurrent claims of one key grant exactly one owner") {
  catga::InMemoryIdempotencyStore store({.max_entries = 10'000});
  constexpr int kThreads = 8;
  constexpr int kKeys = 200;
  std::atomic<int> owners{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int k = 0; k < kKeys; ++k) {
        auto c = store.claim("key-" + std::to_string(k), 1h).value();
        if (c.state == State::claimed) owners.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(owners.load() == kKeys);
  CHECK(store.size() == kKeys);
}

TEST_CASE("InMemoryIdempotencyStore: random operations agree with a simple model") {
  // The model: a map of keys plus the completion order, with the same rules
  // (TTL checked on claim, eviction of the oldest completed on complete).
  // Keys mix the three kinds the store keeps apart (32 lowercase hex digits
  // stored as binary, short text, long text), so one slot goes from one kind
  // to another; one completion in four remembers a failure.
  struct ModelEntry {
    bool completed = false;
    std::chrono::steady_clock::time_point expires;
    int value = 0;
    bool failed = false;
  };
  auto clock = std::make_shared<catga::ManualClock>();
  constexpr std::size_t kBound = 40;
  catga::InMemoryIdempotencyStore store({.max_entries = kBound, .shards = 1, .clock = clock});
  std::map<std::string, ModelEntry> model;
  std::deque<std::string> order;                // completed keys, oldest first
  std::map<std::string, std::uint64_t> tokens;  // claims we hold

  std::uint64_t rng = 12345;
  auto next = [&](std::uint64_t n) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (rng >> 33) % n;
  };
  auto forget_order = [&](const std::string& k) {
    order.erase(std::remove(order.begin(), order.end(), k), order.end());
  };
  auto make_key = [](std::uint64_t n) {
    if (n % 3 == 0) {
      char hex[33];
      std::snprintf(hex, sizeof hex, "%016llx%016llx", 0x1234ULL * n + 1, 7ULL + n);
      return std::string(hex);
    }
    if (n % 3 == 1) return "k" + std::to_string(n);
    return std::string(60, 'x') + std::to_string(n);
  };

  for (int step = 0; step < 20000; ++step) {
    const std::string key = make_key(next(120));
    const auto op = next(10);
    const auto now = clock->now();
    if (op < 5) {
      auto c = store.claim(key, 1h).value();
      auto it = model.find(key);
      if (it != model.end() && now < it->second.expires) {
        if (it->second.completed) {
          REQUIRE(c.state == State::completed);
          REQUIRE(c.outcome);
          if (it->second.failed) {
            REQUIRE(c.outcome->error);
            REQUIRE(c.outcome->error->message == std::to_string(it->second.value));
          } else {
            REQUIRE_FALSE(c.outcome->error);
            REQUIRE(c.outcome->value == it->second.value);
          }
        } else {
          REQUIRE(c.state == State::in_progress);
        }
      } else {
        REQUIRE(c.state == State::claimed);
        if (it != model.end() && it->second.completed) forget_order(key);
        model[key] = ModelEntry{false, now + 1h, 0, false};
        tokens[key] = c.token;
      }
    } else if (op < 8) {
      auto t = tokens.find(key);
      if (t == tokens.end()) continue;
      const int value = static_cast<int>(next(1000));
      const bool fail = next(4) == 0;
      catga::IdempotencyOutcome outcome = ok_value(value);
      if (fail) outcome = {.value = {}, .error = catga::Error{"bad", std::to_string(value), false}};
      const bool stored = store.complete(key, t->second, outcome, 10min).ok();
      tokens.erase(t);
      auto it = model.find(key);
      const bool ours = it != model.end() && !it->second.completed;
      REQUIRE(stored == ours);
      if (!ours) continue;
      it->second = ModelEntry{true, now + 10min, value, fail};
      order.push_back(key);
      while (!order.empty() && (model.size() > kBound || model[order.front()].expires <= now)) {
        model.erase(order.front());
        order.pop_front();
      }
    } else if (op < 9) {
      auto t = tokens.find(key);
      if (t == tokens.end()) continue;
      REQUIRE(store.release(key, t->second).ok());
      tokens.erase(t);
      auto it = model.find(key);
      if (it != model.end() && !it->second.completed) model.erase(it);
    } else {
      clock->advance(std::chrono::seconds(next(120)));
    }
    REQUIRE(store.size() == model.size());
  }
}
