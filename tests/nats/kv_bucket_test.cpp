// KvBucket (catga::KeyValue on a JetStream KV bucket) against a real server:
// the KeyValue contract, revision conflicts across connections, TTL.
#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "catga/nats/key_value.hpp"
#include "nats_server.hpp"
#include "test_messages.hpp"
#include "wait_for.hpp"

using catga::nats::KvBucket;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<catga::nats::Connection> connect(const catga::test::NatsServer& server, std::string name) {
  return catga::nats::Connection::connect(nt::nats_options(server, std::move(name))).value();
}

std::shared_ptr<KvBucket> bucket_on(std::shared_ptr<catga::nats::Connection> conn, std::string name = "state",
                                    std::chrono::nanoseconds ttl = {}) {
  catga::nats::KvBucketOptions o;
  o.bucket = std::move(name);
  o.storage = catga::nats::StorageType::memory;
  o.ttl = ttl;
  auto b = KvBucket::open(std::move(conn), o);
  if (!b) throw catga::Exception(b.error());
  return std::move(*b);
}

}  // namespace

TEST_CASE("KvBucket: get, put, create, update, erase and keys follow the KeyValue contract") {
  catga::test::NatsServer server;
  auto kv = bucket_on(connect(server, "kv"));

  auto absent = kv->get("stock.A-1");
  REQUIRE(absent);
  CHECK_FALSE(absent->has_value());

  auto r1 = kv->put("stock.A-1", "10");
  REQUIRE(r1);
  auto e = kv->get("stock.A-1");
  REQUIRE(e);
  REQUIRE(e->has_value());
  CHECK((*e)->value == "10");
  CHECK((*e)->revision == *r1);

  // create: only for an absent key.
  auto exists = kv->create("stock.A-1", "99");
  REQUIRE_FALSE(exists);
  CHECK(exists.error().code == "conflict");
  CHECK(exists.error().retryable);
  auto r2 = kv->create("stock.B-2", "5");
  REQUIRE(r2);
  CHECK(*r2 > *r1);

  // update: only at the expected revision.
  auto r3 = kv->update("stock.A-1", "8", *r1);
  REQUIRE(r3);
  CHECK(*r3 > *r2);
  auto stale = kv->update("stock.A-1", "7", *r1);
  REQUIRE_FALSE(stale);
  CHECK(stale.error().code == "conflict");
  CHECK(stale.error().retryable);
  CHECK(kv->get("stock.A-1").value()->value == "8");
  auto missing = kv->update("stock.none", "1", 1);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == "conflict");

  REQUIRE(kv->put("order.1", "{}"));
  auto keys = kv->keys();
  REQUIRE(keys);
  CHECK(*keys == std::vector<std::string>{"order.1", "stock.A-1", "stock.B-2"});
  auto stock = kv->keys("stock.");
  REQUIRE(stock);
  CHECK(*stock == std::vector<std::string>{"stock.A-1", "stock.B-2"});

  // erase: gone for get and keys; erasing an absent key is fine; the key can
  // be created again.
  REQUIRE(kv->erase("stock.B-2"));
  CHECK_FALSE(kv->get("stock.B-2").value().has_value());
  CHECK(kv->keys("stock.").value() == std::vector<std::string>{"stock.A-1"});
  CHECK(kv->erase("stock.never"));
  CHECK(kv->create("stock.B-2", "1"));
  CHECK(kv->get("stock.B-2").value()->value == "1");

  // Keys outside the KV alphabet are refused before reaching the server.
  auto bad = kv->put("has space", "x");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == "validation");
  CHECK(kv->get("").error().code == "validation");
}

TEST_CASE("KvBucket: two connections share the bucket and kv_modify never loses an update") {
  catga::test::NatsServer server;
  auto a = bucket_on(connect(server, "a"));
  auto b = bucket_on(connect(server, "b"));  // binds to the bucket `a` created
  REQUIRE(a->put("seen-by-b", "yes"));
  CHECK(b->get("seen-by-b").value()->value == "yes");

  constexpr int kPerWriter = 40;
  std::atomic<int> failures{0};
  auto writer = [&](KvBucket& kv) {
    for (int i = 0; i < kPerWriter; ++i) {
      auto r = catga::kv_modify(kv, "counter", [](const std::optional<std::string>& v) -> catga::Result<std::string> {
        return std::to_string(std::stoi(v.value_or("0")) + 1);
      });
      if (!r) failures++;
    }
  };
  std::thread ta([&] { writer(*a); });
  std::thread tb([&] { writer(*b); });
  ta.join();
  tb.join();
  CHECK(failures.load() == 0);
  CHECK(a->get("counter").value()->value == std::to_string(2 * kPerWriter));
}

TEST_CASE("KvBucket: entries expire after the bucket's ttl") {
  catga::test::NatsServer server;
  auto kv = bucket_on(connect(server, "ttl"), "leases", 1s);
  REQUIRE(kv->put("lease.1", "holder"));
  CHECK(kv->get("lease.1").value().has_value());
  CHECK(catga::test::wait_for([&] { return !kv->get("lease.1").value().has_value(); }, 30s));
  CHECK(kv->keys().value().empty());
}
