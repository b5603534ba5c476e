// KvBucket (catga::KeyValue on a JetStream KV bucket) against a real server:
// the KeyValue contract, revision conflicts across connections, TTL, writes
// whose answer is lost (through a TCP proxy that holds the server's bytes).
// Replicated buckets: kv_cluster_test.cpp.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "catga/nats/key_value.hpp"
#include "nats_server.hpp"
#include "raw_nats.hpp"
#include "test_messages.hpp"
#include "wait_for.hpp"

using catga::nats::KvBucket;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<catga::nats::Connection> connect(const catga::test::NatsServer& server, std::string name) {
  return catga::nats::Connection::connect(nt::nats_options(server, std::move(name))).value();
}

std::shared_ptr<KvBucket> bucket_on(std::shared_ptr<catga::nats::Connection> conn, std::string name = "state",
                                    std::chrono::nanoseconds ttl = {},
                                    std::chrono::milliseconds timeout = std::chrono::milliseconds(5'000)) {
  catga::nats::KvBucketOptions o;
  o.bucket = std::move(name);
  o.storage = catga::nats::StorageType::memory;
  o.ttl = ttl;
  o.timeout = timeout;
  auto b = KvBucket::open(std::move(conn), o);
  if (!b) throw catga::Exception(b.error());
  return std::move(*b);
}

// A TCP proxy on loopback in front of one server port. After hold(after),
// what the server sends is kept back until the client sends something at
// least `after` later: the answer to the request sent in between is lost to
// the client (it times out) although the server acted on it.
//
//   AnswerHoldProxy proxy(server.port());      // connect to proxy.url()
//   proxy.hold(300ms);
//   kv->update(...);                            // its ack arrives too late
class AnswerHoldProxy {
 public:
  explicit AnswerHoldProxy(int upstream_port) : upstream_port_(upstream_port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
        ::listen(listen_fd_, 4) != 0 || ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      throw std::runtime_error("proxy listen: " + std::string(std::strerror(errno)));
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~AnswerHoldProxy() {
    stop_ = true;
    thread_.join();
    for (auto& p : pairs_) {
      ::close(p.client);
      ::close(p.server);
    }
    ::close(listen_fd_);
  }
  AnswerHoldProxy(const AnswerHoldProxy&) = delete;
  AnswerHoldProxy& operator=(const AnswerHoldProxy&) = delete;

  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  void hold(std::chrono::milliseconds release_after) {
    std::lock_guard lock(mutex_);
    holding_ = true;
    held_since_ = std::chrono::steady_clock::now();
    release_after_ = release_after;
  }
  // How many times held bytes were let through late.
  int releases() const { return releases_.load(); }

 private:
  struct Pair {
    int client = -1;
    int server = -1;
    std::string held;  // server bytes kept back
  };

  static bool send_all(int fd, const char* data, std::size_t n) {
    while (n > 0) {
      const ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
      if (w <= 0) return false;
      data += w;
      n -= static_cast<std::size_t>(w);
    }
    return true;
  }

  void accept_one() {
    const int c = ::accept(listen_fd_, nullptr, nullptr);
    if (c < 0) return;
    const int u = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(upstream_port_));
    if (u < 0 || ::connect(u, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      ::close(c);
      if (u >= 0) ::close(u);
      return;
    }
    pairs_.push_back(Pair{c, u, {}});
  }

  void run() {
    char buf[65536];
    while (!stop_) {
      std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
      for (auto& p : pairs_) {
        fds.push_back({p.client, POLLIN, 0});
        fds.push_back({p.server, POLLIN, 0});
      }
      if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
      if (fds[0].revents & POLLIN) accept_one();
      for (std::size_t i = 0; i < pairs_.size() && 1 + 2 * i + 1 < fds.size(); ++i) {
        Pair& p = pairs_[i];
        if (fds[1 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR)) {
          const ssize_t n = ::recv(p.client, buf, sizeof(buf), 0);
          if (n <= 0) {
            ::shutdown(p.server, SHUT_RDWR);
            continue;
          }
          {
            std::lock_guard lock(mutex_);
            if (holding_ && std::chrono::steady_clock::now() - held_since_ >= release_after_) {
              holding_ = false;
              for (auto& q : pairs_) {
                send_all(q.client, q.held.data(), q.held.size());
                q.held.clear();
              }
              ++releases_;
            }
          }
          send_all(p.server, buf, static_cast<std::size_t>(n));
        }
        if (fds[2 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR)) {
          const ssize_t n = ::recv(p.server, buf, sizeof(buf), 0);
          if (n <= 0) {
            ::shutdown(p.client, SHUT_RDWR);
            continue;
          }
          std::lock_guard lock(mutex_);
          if (holding_) {
            p.held.append(buf, static_cast<std::size_t>(n));
          } else {
            send_all(p.client, buf, static_cast<std::size_t>(n));
          }
        }
      }
    }
  }

  int upstream_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::vector<Pair> pairs_;  // only the proxy thread touches it after start
  std::mutex mutex_;
  bool holding_ = false;
  std::chrono::steady_clock::time_point held_since_;
  std::chrono::milliseconds release_after_{0};
  std::atomic<int> releases_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

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

// keys() reads each key's last message through an inbox of its own (not
// nats.c's kvStore_Keys watcher, whose subscription is destroyed while the
// server may still send: nats.c issue 637). Hundreds of keys, erased ones
// among them, and prefixes that are and are not whole tokens.
TEST_CASE("KvBucket: keys lists hundreds of keys, leaves out erased ones and filters any prefix") {
  catga::test::NatsServer server;
  auto kv = bucket_on(connect(server, "keys"));
  constexpr int kKeys = 600;
  for (int i = 0; i < kKeys; ++i) REQUIRE(kv->put("saga." + std::to_string(i), "v"));
  REQUIRE(kv->put("saga.1", "again"));  // history: still one key
  for (int i = 0; i < kKeys; i += 3) REQUIRE(kv->erase("saga." + std::to_string(i)));
  REQUIRE(kv->put("sagas", "not under saga."));
  REQUIRE(kv->put("other.1", "v"));

  const auto all = kv->keys().value();
  CHECK(all.size() == static_cast<std::size_t>(kKeys - kKeys / 3 + 2));
  CHECK(std::is_sorted(all.begin(), all.end()));
  const auto sagas = kv->keys("saga.").value();
  CHECK(sagas.size() == static_cast<std::size_t>(kKeys - kKeys / 3));
  CHECK(std::find(sagas.begin(), sagas.end(), "saga.0") == sagas.end());
  CHECK(std::find(sagas.begin(), sagas.end(), "saga.1") != sagas.end());
  CHECK(kv->keys("saga.59").value() == std::vector<std::string>{"saga.59", "saga.590", "saga.592", "saga.593",
                                                                "saga.595", "saga.596", "saga.598", "saga.599"});
  CHECK(kv->keys("sag").value().size() == sagas.size() + 1);
  CHECK(kv->keys("none.").value().empty());
  // Each listing deleted its consumer.
  catga::test::RawNats raw(server.url());
  const auto consumers = [&] {
    jsStreamInfo* info = nullptr;
    catga::test::check(js_GetStreamInfo(&info, raw.js(), "KV_state", nullptr, nullptr), "stream info");
    const auto n = info->State.Consumers;
    jsStreamInfo_Destroy(info);
    return n;
  };
  CHECK(catga::test::wait_for([&] { return consumers() == 0; }, 5s));
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

// Before: the update's own write, stored while its ack was lost, was then
// read back at a newer revision and reported as `conflict` (kv_modify would
// apply the change a second time).
TEST_CASE("KvBucket: an update whose answer is lost is recognised as stored, not reported as a conflict") {
  catga::test::NatsServer server;
  AnswerHoldProxy proxy(server.port());
  catga::nats::NatsOptions o;
  o.servers = {proxy.url()};
  o.name = "lost-ack";
  auto kv = bucket_on(catga::nats::Connection::connect(o).value(), "state", {}, 2s);
  auto r1 = kv->put("stock.A-1", "10");
  REQUIRE(r1);

  proxy.hold(300ms);
  auto r2 = kv->update("stock.A-1", "8", *r1);
  CHECK(proxy.releases() == 1);
  REQUIRE_MESSAGE(r2, (r2 ? "" : r2.error().code + ": " + r2.error().message));
  CHECK(*r2 == *r1 + 1);  // stored once
  auto now = kv->get("stock.A-1");
  REQUIRE(now);
  REQUIRE(now->has_value());
  CHECK((*now)->value == "8");
  CHECK((*now)->revision == *r2);

  // The same for a create, and for a create over an erased key.
  proxy.hold(300ms);
  auto c1 = kv->create("stock.B-2", "5");
  REQUIRE_MESSAGE(c1, (c1 ? "" : c1.error().code + ": " + c1.error().message));
  CHECK(kv->get("stock.B-2").value()->revision == *c1);
  REQUIRE(kv->erase("stock.B-2"));
  proxy.hold(300ms);
  auto c2 = kv->create("stock.B-2", "6");
  REQUIRE_MESSAGE(c2, (c2 ? "" : c2.error().code + ": " + c2.error().message));
  CHECK(kv->get("stock.B-2").value()->value == "6");
  CHECK(kv->get("stock.B-2").value()->revision == *c2);
  CHECK(proxy.releases() == 3);

  // A real conflict is still one.
  auto stale = kv->update("stock.A-1", "1", *r1);
  REQUIRE_FALSE(stale);
  CHECK(stale.error().code == "conflict");
  CHECK(stale.error().retryable);
}
