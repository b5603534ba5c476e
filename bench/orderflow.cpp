// `orderflow` benchmark: the order-flow sample end to end, over HTTP, on a
// nats-server (or a 3-node cluster, R3) the benchmark starts itself. Every
// service runs in this process (role "all": order, notification, two
// replicas each of inventory and payment, one NATS connection), as
// `order-flow --role all --transport nats` does. Prints one JSON line per mode:
//   {"bench":"orderflow","mode":"single"|"cluster","orders_per_s":…,"p50_ms":…,"p99_ms":…,
//    "idle_p50_ms":…,"js_ops_per_order":…,"critical_path":{…}}
// Details (what each field measures, recorded runs): BENCHMARKS.md, "orderflow".
//   bench_orderflow                  # single, then cluster
//   bench_orderflow single           # one mode
// Progress goes to stderr.
#include <httplib.h>
#include <arpa/inet.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "host.hpp"
#include "nats_cluster.hpp"
#include "nats_server.hpp"

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr int kSkus = 20;  // stock keys (one KV key each): spread so no key is hot
constexpr int kIdleOrders = 30;
constexpr int kTraceOrders = 8;
constexpr int kModerateRate = 50;  // orders/s for p50/p99
constexpr auto kModerateFor = 4s;
constexpr auto kStepFor = 3s;      // each offered rate of the search
constexpr auto kDrainFor = 8s;     // after a step, for its last orders to finish
constexpr double kMaxP99Ms = 1000.0;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(std::max(0.0, std::ceil(p / 100.0 * static_cast<double>(v.size())) - 1));
  return v[std::min(rank, v.size() - 1)];
}

// A loopback port nobody listens on now.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    throw std::runtime_error("no free port");
  }
  const int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

double round1(double v) { return std::round(v * 10.0) / 10.0; }

std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string a;
  f >> a;
  return a;
}

// Watches the server with a core NATS connection of its own: the orders'
// final events (completion), and while tracing every message that passes
// through the server (subject ">"), with its arrival time here.
class Watcher {
 public:
  explicit Watcher(const std::string& urls) {
    natsOptions* o = nullptr;
    natsOptions_Create(&o);
    std::vector<std::string> list;
    for (std::size_t at = 0; at <= urls.size();) {
      const auto comma = std::min(urls.find(',', at), urls.size());
      list.push_back(urls.substr(at, comma - at));
      at = comma + 1;
    }
    std::vector<const char*> servers;
    for (const auto& u : list) servers.push_back(u.c_str());
    natsOptions_SetServers(o, servers.data(), static_cast<int>(servers.size()));
    natsOptions_SetTimeout(o, 10'000);
    natsOptions_SetSendAsap(o, true);
    natsOptions_SetMaxPendingMsgs(o, 1'000'000);
    const natsStatus s = natsConnection_Connect(&nc_, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK) throw std::runtime_error(std::string("watcher: cannot connect: ") + natsStatus_GetText(s));
    // Keyed types (the sample's are, since issue 22) go out on a partition
    // subject, catga.evt.<Type>.<n>; the plain subject covers unkeyed ones.
    for (const char* s : {"catga.evt.OrderConfirmed", "catga.evt.OrderCancelled", "catga.evt.OrderConfirmed.*",
                          "catga.evt.OrderCancelled.*"}) {
      natsSubscription* sub = nullptr;
      natsConnection_Subscribe(&sub, nc_, s, &Watcher::on_final, this);
      natsSubscription_SetPendingLimits(sub, -1, -1);
      subs_.push_back(sub);
    }
    natsConnection_Flush(nc_);
  }
  ~Watcher() {
    stop_trace();
    for (auto* s : subs_) natsSubscription_Destroy(s);
    natsConnection_Destroy(nc_);
  }

  // Sent: the order's POST started at `t`.
  void expect(const std::string& order_id, Clock::time_point t) {
    std::lock_guard lock(mu_);
    auto& o = orders_[order_id];
    o.posted = t;
    o.have_post = true;
    if (o.done) cv_.notify_all();
  }
  // Completion (first final event − POST start), ms; nullopt while open.
  std::optional<double> completion(const std::string& order_id) {
    std::lock_guard lock(mu_);
    auto it = orders_.find(order_id);
    if (it == orders_.end() || !it->second.done || !it->second.have_post) return std::nullopt;
    return ms_between(it->second.posted, it->second.finished);
  }
  bool wait_done(const std::string& order_id, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
      auto it = orders_.find(order_id);
      return it != orders_.end() && it->second.done;
    });
  }

  struct Seen {
    Clock::time_point at;
    std::string subject;
    std::string reply;
    std::string body_start;  // first bytes (order ids, API bodies)
  };
  void start_trace() {
    std::lock_guard lock(mu_);
    trace_.clear();
    if (trace_sub_ != nullptr) return;
    natsConnection_Subscribe(&trace_sub_, nc_, ">", &Watcher::on_any, this);
    natsSubscription_SetPendingLimits(trace_sub_, -1, -1);
    natsConnection_Flush(nc_);
  }
  void stop_trace() {
    natsSubscription* s = nullptr;
    {
      std::lock_guard lock(mu_);
      std::swap(s, trace_sub_);
    }
    if (s != nullptr) {
      natsSubscription_Unsubscribe(s);
      natsSubscription_Destroy(s);
    }
  }
  std::vector<Seen> take_trace() {
    std::lock_guard lock(mu_);
    return std::move(trace_);
  }

 private:
  struct Order {
    Clock::time_point posted;
    Clock::time_point finished;
    bool have_post = false;
    bool done = false;
  };

  static void on_final(natsConnection*, natsSubscription*, natsMsg* m, void* self) {
    const auto now = Clock::now();
    auto* w = static_cast<Watcher*>(self);
    const std::string body(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
    natsMsg_Destroy(m);
    const auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded()) return;
    const std::string id = j.value("order_id", "");
    std::lock_guard lock(w->mu_);
    auto& o = w->orders_[id];
    if (o.done) return;  // a republished final event
    o.done = true;
    o.finished = now;
    w->cv_.notify_all();
  }
  static void on_any(natsConnection*, natsSubscription*, natsMsg* m, void* self) {
    Seen s;
    s.at = Clock::now();
    s.subject = natsMsg_GetSubject(m);
    if (const char* r = natsMsg_GetReply(m)) s.reply = r;
    s.body_start.assign(natsMsg_GetData(m), static_cast<std::size_t>(std::min(natsMsg_GetDataLength(m), 400)));
    natsMsg_Destroy(m);
    auto* w = static_cast<Watcher*>(self);
    std::lock_guard lock(w->mu_);
    w->trace_.push_back(std::move(s));
  }

  natsConnection* nc_ = nullptr;
  std::vector<natsSubscription*> subs_;
  natsSubscription* trace_sub_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::string, Order> orders_;
  std::vector<Seen> trace_;
};

// An order that is confirmed: a known customer under its limit, stock held.
std::string order_body(int i) {
  nlohmann::json items = nlohmann::json::array();
  items.push_back({{"sku", "B-" + std::to_string(i % kSkus)}, {"qty", 1}});
  return nlohmann::json{{"customer", "c" + std::to_string(i % 50)}, {"items", items}, {"amount", 10.0}}.dump();
}

struct Placed {
  std::string order_id;
  bool ok = false;
};

Placed post_order(httplib::Client& http, Watcher& w, int i) {
  const auto t = Clock::now();
  auto res = http.Post("/orders", order_body(i), "application/json");
  Placed p;
  if (!res || res->status != 202) return p;
  p.order_id = nlohmann::json::parse(res->body, nullptr, false).value("order_id", "");
  p.ok = !p.order_id.empty();
  if (p.ok) w.expect(p.order_id, t);
  return p;
}

std::unique_ptr<httplib::Client> client(int port) {
  auto c = std::make_unique<httplib::Client>("127.0.0.1", port);
  c->set_keep_alive(true);
  c->set_tcp_nodelay(true);  // else the body waits for the ACK of the headers (Nagle)
  c->set_connection_timeout(5s);
  c->set_read_timeout(30s);
  return c;
}

// Offers `rate` orders/s for `duration` (open loop: each order at its
// scheduled time, by whichever client thread is free), then waits up to
// kDrainFor for the last ones. Completion times of every order, and how
// many did not complete.
struct RunResult {
  std::vector<double> completion_ms;
  int failed = 0;
  int offered = 0;
};
RunResult offer(int port, Watcher& w, int rate, std::chrono::milliseconds duration, std::atomic<int>& next_index) {
  const int n = static_cast<int>(rate * duration.count() / 1000);
  const int threads = std::clamp(rate / 10, 4, 48);
  std::vector<std::string> ids(static_cast<std::size_t>(n));
  std::atomic<int> ticket{0};
  const auto t0 = Clock::now() + 20ms;
  const auto interval = std::chrono::duration<double>(1.0 / rate);
  std::vector<std::thread> pool;
  for (int c = 0; c < threads; ++c) {
    pool.emplace_back([&] {
      auto http = client(port);
      for (int k = ticket++; k < n; k = ticket++) {
        std::this_thread::sleep_until(t0 + std::chrono::duration_cast<Clock::duration>(interval * k));
        auto p = post_order(*http, w, next_index++);
        if (p.ok) ids[static_cast<std::size_t>(k)] = p.order_id;
      }
    });
  }
  for (auto& t : pool) t.join();
  RunResult r;
  r.offered = n;
  const auto drain_until = Clock::now() + kDrainFor;
  for (const auto& id : ids) {
    if (id.empty()) {
      ++r.failed;
      continue;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(drain_until - Clock::now());
    if (!w.wait_done(id, std::max(left, std::chrono::milliseconds(1)))) {
      ++r.failed;
      continue;
    }
    if (auto c = w.completion(id)) r.completion_ms.push_back(*c);
  }
  return r;
}

// Server counters (monitoring port): messages in, JetStream API calls.
struct ServerCounts {
  double in_msgs = 0;
  double api = 0;
};
ServerCounts server_counts(const std::vector<int>& monitor_ports) {
  ServerCounts c;
  for (int port : monitor_ports) {
    httplib::Client http("127.0.0.1", port);
    if (auto r = http.Get("/varz")) {
      c.in_msgs += nlohmann::json::parse(r->body, nullptr, false).value("in_msgs", 0.0);
    }
    if (auto r = http.Get("/jsz")) {
      const auto j = nlohmann::json::parse(r->body, nullptr, false);
      if (j.contains("api")) c.api += j["api"].value("total", 0.0);
    }
  }
  return c;
}

// What a message is, for the critical path: the hop it belongs to.
std::string hop_of(const std::string& subject, const std::string& body) {
  auto starts = [&](std::string_view p) { return subject.rfind(p, 0) == 0; };
  // "<what>:<bucket>" for KV operations.
  auto token_after = [&](std::size_t at) { return subject.substr(at, subject.find('.', at) - at); };
  if (starts("$KV.")) return "kv_write:" + token_after(4);
  if (starts("$JS.API.DIRECT.GET.KV_")) return "kv_read:" + token_after(22);
  if (starts("$JS.API.STREAM.MSG.GET.KV_")) return "kv_read:" + token_after(26);
  if (starts("$JS.API.STREAM.MSG.GET.") || starts("$JS.API.CONSUMER.CREATE.") ||
      starts("$JS.API.CONSUMER.DELETE.") || starts("$JS.API.CONSUMER.DURABLE.CREATE.")) {
    return "es_read";
  }
  if (starts("$JS.API.CONSUMER.MSG.NEXT.")) return body.find("\"expires\":") != std::string::npos &&
                                                          subject.find("CATGA_ES") != std::string::npos
                                                      ? "es_read"
                                                      : "consume_pull";
  if (starts("$JS.ACK.")) return "consume_ack";
  if (starts("$JS.API.")) return "js_api";
  if (starts("catga.cmd.")) return "request:" + subject.substr(10);
  if (starts("catga.evt.")) return "event_publish";
  if (starts("catga.es.")) return "es_append";
  if (starts("$JS.EVENT.")) return "advisory";
  return "other";
}

// One order at a time while every message through the server is recorded:
// the gap before each message is charged to that message's hop (a reply
// to the hop of its request, as "<hop>.reply": the server's or the remote
// handler's time). Mean ms per order and hop.
nlohmann::json critical_path(int port, Watcher& w, std::atomic<int>& next_index) {
  auto http = client(port);
  std::map<std::string, double> total;
  std::map<std::string, double> count;
  int traced = 0;
  for (int i = 0; i < kTraceOrders; ++i) {
    w.start_trace();
    std::this_thread::sleep_for(20ms);
    (void)w.take_trace();
    const auto t0 = Clock::now();
    auto p = post_order(*http, w, next_index++);
    if (!p.ok || !w.wait_done(p.order_id, 10s)) continue;
    std::this_thread::sleep_for(5ms);
    auto seen = w.take_trace();
    const auto done_at = t0 + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double, std::milli>(*w.completion(p.order_id)));
    std::unordered_map<std::string, std::string> pending_reply;  // reply subject -> hop
    auto last = t0;
    bool first = true;
    const bool dump = i == kTraceOrders - 1 && std::getenv("BENCH_TRACE") != nullptr;
    for (const auto& s : seen) {
      if (s.at < t0) continue;
      if (s.at > done_at) break;
      if (dump) {
        std::fprintf(stderr, "    %8.3f ms  %s  %s\n", ms_between(t0, s.at), s.subject.c_str(),
                     s.body_start.substr(0, 120).c_str());
      }
      std::string hop;
      if (auto it = pending_reply.find(s.subject); it != pending_reply.end()) {
        hop = it->second + ".reply";
        pending_reply.erase(it);
      } else if (s.subject.rfind("_INBOX.", 0) == 0) {
        hop = "delivery";  // a consumer's message (pull reply) or a reply we did not see asked
      } else {
        hop = hop_of(s.subject, s.body_start);
        if (!s.reply.empty() && hop != "consume_ack") pending_reply[s.reply] = hop;
      }
      if (first) {
        hop = "http_accept+" + hop;  // POST sent until the service's first message
        first = false;
      }
      total[hop] += ms_between(last, s.at);
      count[hop] += 1;
      last = s.at;
    }
    total["final_event_to_client"] += ms_between(last, done_at);
    ++traced;
  }
  w.stop_trace();
  nlohmann::json out = nlohmann::json::object();
  if (traced == 0) return out;
  double sum = 0;
  for (const auto& [hop, ms] : total) {
    out[hop] = {{"ms", std::round(ms / traced * 100.0) / 100.0}, {"n", round1(count[hop] / traced)}};
    sum += ms / traced;
  }
  out["total_ms"] = round1(sum);
  out["orders"] = traced;
  return out;
}

nlohmann::json run_mode(const std::string& mode) {
  std::unique_ptr<catga::test::NatsServer> server;
  std::unique_ptr<catga::test::NatsCluster> cluster;
  std::string urls;
  std::vector<int> monitor_ports;
  if (mode == "cluster") {
    // R3 buckets need nats-server 2.10 (the sample refuses replicated KV
    // on 2.9: nats-server issue 4320); scripts/bench provides it.
    const char* next = std::getenv("CATGA_NATS_SERVER_NEXT");
    if (next == nullptr || *next == '\0') {
      return {{"bench", "orderflow"}, {"mode", mode}, {"skipped", "needs nats-server 2.10: set CATGA_NATS_SERVER_NEXT"}};
    }
    catga::test::NatsClusterOptions co;
    co.binary = next;
    cluster = std::make_unique<catga::test::NatsCluster>(co);
    urls = cluster->url_list();
  } else {
    catga::test::NatsServerOptions o;
    const int mport = free_port();  // the monitoring port (/varz, /jsz)
    o.extra_args = {"-m", std::to_string(mport)};
    server = std::make_unique<catga::test::NatsServer>(o);
    monitor_ports.push_back(mport);
    urls = server->url();
  }
  std::fprintf(stderr, "bench_orderflow %s: nats at %s, load average %s\n", mode.c_str(), urls.c_str(),
               load_average().c_str());

  order_flow::HostSettings hs;
  hs.role = "all";
  hs.transport = "nats";
  hs.nats.url = urls;
  hs.nats.replicas = mode == "cluster" ? 3 : 1;
  hs.http_port = 0;
  hs.replicas = 2;
  // BENCH_SEND_ASAP=0: nats.c's default batching on the services' connection.
  if (const char* v = std::getenv("BENCH_SEND_ASAP")) hs.nats.send_asap = std::string(v) != "0";
  for (int i = 0; i < kSkus; ++i) hs.catalog.emplace_back("B-" + std::to_string(i), 10'000'000);
  auto host = order_flow::Host::start(hs);
  if (!host) throw std::runtime_error("host: " + host.error().message);
  const int port = (*host)->port();
  Watcher w(urls);
  std::atomic<int> next_index{0};

  // Warm-up: connections, consumers, buckets, first-use paths.
  {
    auto http = client(port);
    for (int i = 0; i < 10; ++i) {
      auto p = post_order(*http, w, next_index++);
      if (p.ok) w.wait_done(p.order_id, 10s);
    }
  }

  // Idle: one order at a time; server counters around it.
  std::vector<double> idle;
  const auto c0 = server_counts(monitor_ports);
  {
    auto http = client(port);
    for (int i = 0; i < kIdleOrders; ++i) {
      auto p = post_order(*http, w, next_index++);
      if (p.ok && w.wait_done(p.order_id, 10s)) idle.push_back(*w.completion(p.order_id));
    }
  }
  const auto c1 = server_counts(monitor_ports);
  std::fprintf(stderr, "  idle: %zu orders, p50 %.1f ms, p99 %.1f ms\n", idle.size(), percentile(idle, 50),
               percentile(idle, 99));

  auto path = critical_path(port, w, next_index);
  std::fprintf(stderr, "  critical path: %s\n", path.dump().c_str());

  auto moderate = offer(port, w, kModerateRate, kModerateFor, next_index);
  std::fprintf(stderr, "  %d/s: %zu of %d complete, p50 %.1f ms, p99 %.1f ms\n", kModerateRate,
               moderate.completion_ms.size(), moderate.offered, percentile(moderate.completion_ms, 50),
               percentile(moderate.completion_ms, 99));

  // The highest offered rate at which every order completes with p99 < 1 s:
  // rates up until the first that fails, bounded.
  int best = 0;
  const std::vector<int> rates = {25, 50, 100, 150, 200, 300, 400, 500, 700, 1000};
  for (int rate : rates) {
    auto r = offer(port, w, rate, kStepFor, next_index);
    const double p99 = percentile(r.completion_ms, 99);
    std::fprintf(stderr, "  offered %d/s: %zu of %d complete, p50 %.1f ms, p99 %.1f ms\n", rate,
                 r.completion_ms.size(), r.offered, percentile(r.completion_ms, 50), p99);
    if (r.failed > 0 || p99 > kMaxP99Ms) break;
    best = rate;
  }

  (*host)->stop();
  const double per_order = 1.0 / std::max<std::size_t>(idle.size(), 1);
  nlohmann::json out = {{"bench", "orderflow"},
                        {"mode", mode},
                        {"orders_per_s", best},
                        {"p50_ms", round1(percentile(moderate.completion_ms, 50))},
                        {"p99_ms", round1(percentile(moderate.completion_ms, 99))},
                        {"idle_p50_ms", round1(percentile(idle, 50))},
                        {"idle_p99_ms", round1(percentile(idle, 99))}};
  if (!monitor_ports.empty()) {
    // Every message a client sent the server per order (publishes, requests,
    // replies, KV and JetStream API calls, pulls, acks), idle phase; of them
    // JetStream API calls.
    out["js_ops_per_order"] = round1((c1.in_msgs - c0.in_msgs) * per_order);
    out["js_api_per_order"] = round1((c1.api - c0.api) * per_order);
  }
  out["critical_path"] = path;
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("bench"));
  spdlog::set_level(spdlog::level::warn);
  std::vector<std::string> modes;
  for (int i = 1; i < argc; ++i) modes.emplace_back(argv[i]);
  if (modes.empty()) modes = {"single", "cluster"};
  for (const auto& m : modes) {
    try {
      std::printf("%s\n", run_mode(m).dump().c_str());
      std::fflush(stdout);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_orderflow %s: %s\n", m.c_str(), e.what());
      return 1;
    }
  }
  return 0;
}
