// `transport` benchmark: catga::nats against plain nats.c, same process, same
// run, same nats-server (file storage, temp dir). Prints one JSON line:
//   {"bench":"transport","raw_publish_per_s":…,"publish_per_s":…,"publish_ratio":…,
//    "raw_consume_per_s":…,"consume_per_s":…,"consume_ratio":…,"e2e_p50_us":…,"e2e_p99_us":…,
//    "raw_request_per_s":…,"request_per_s":…,"request_ratio":…,
//    "keyed_consume_per_s":…,"ordered_consume_per_s":…,"ordered_ratio":…,
//    "publish_metrics_per_s":…,"publish_metrics_ratio":…,"consume_traced_per_s":…,"consume_traced_ratio":…,
//    "consume_metrics_per_s":…,"consume_metrics_ratio":…,"request_traced_per_s":…,"request_traced_ratio":…}
// The _traced and _metrics figures are catga with tracing on (every trace
// sampled, spans to a counting sink) or a metrics registry
// (JetStreamOptions::metrics), against catga without them in the same
// rounds: the plain figures are the "off" cost.
// Details (what each side does, recorded runs): BENCHMARKS.md, "transport".
// Progress and extra figures go to stderr.

#include <nats/nats.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "bench_util.hpp"
#include "catga/mediator.hpp"
#include "catga/nats/jetstream_transport.hpp"
#include "catga/pipeline/metrics.hpp"
#include "catga/tracing.hpp"
#include "catga/wire.hpp"
#include "nats_server.hpp"

namespace bench_msgs {
// 128 bytes of JSON (see make_event).
struct BenchEvent {
  std::int64_t sent_ns = 0;
  std::string payload;
};
CATGA_EVENT(BenchEvent, sent_ns, payload)

// Its own subject, so the latency group sees only these.
struct BenchPing {
  std::int64_t sent_ns = 0;
  std::string payload;
};
CATGA_EVENT(BenchPing, sent_ns, payload)

// Keyed (1,000 keys), for ordered groups against plain groups of the same type.
struct BenchKeyed {
  std::string key;
  std::int64_t sent_ns = 0;
  std::string payload;
};
CATGA_EVENT(BenchKeyed, key, sent_ns, payload)
CATGA_ORDERING_KEY(BenchKeyed, key)

struct BenchAdd {
  int a = 0;
  int b = 0;
};
CATGA_COMMAND(BenchAdd, int, a, b)

// BenchAdd served by the traced service (its own queue group).
struct BenchAddTraced {
  int a = 0;
  int b = 0;
};
CATGA_COMMAND(BenchAddTraced, int, a, b)
}  // namespace bench_msgs

using namespace bench_msgs;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr int kPublishCount = 40'000;  // per round and side
constexpr int kConsumeCount = 60'000;  // per round and side
constexpr int kRequestCount = 4'000;   // per round and side
constexpr int kRounds = 5;             // best of (alternating raw and catga)
constexpr int kBatch = 128;            // pull batch, both sides
constexpr int kWindow = 4'096;         // async publish window, both sides
constexpr int kLatencyRate = 2'000;    // events/s for e2e latency
constexpr int kLatencySamples = 4'000;

void check(natsStatus s, const char* what) {
  if (s != NATS_OK) {
    std::fprintf(stderr, "bench_transport: %s: %s\n", what, natsStatus_GetText(s));
    std::exit(1);
  }
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// CPU time of this process (all threads), in microseconds.
double cpu_us() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

// Context switches of this process so far (voluntary + involuntary).
double context_switches() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_nvcsw + ru.ru_nivcsw);
}

// CPU time of another process (the nats-server), in microseconds, from
// /proc/<pid>/stat (clock ticks: 10 ms resolution); 0 when unreadable.
double process_cpu_us(pid_t pid) {
  std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (f == nullptr) return 0;
  char buf[1024];
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  // Fields 14 and 15 (utime, stime) follow the ")" that ends field 2.
  const char* p = std::strrchr(buf, ')');
  unsigned long long utime = 0, stime = 0;
  if (p == nullptr || std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2) {
    return 0;
  }
  return static_cast<double>(utime + stime) * 1e6 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// An event whose JSON is exactly 128 bytes with a 19-digit sent_ns.
template <class E>
E make_event() {
  E e;
  e.sent_ns = 1'000'000'000'000'000'000;
  const std::size_t bare = nlohmann::json(e).dump().size();
  e.payload.assign(128 - bare, 'x');
  return e;
}

// --- raw nats.c -------------------------------------------------------------

// CATGA_BENCH_SEND_ASAP=1: both sides write each message at once (nats.c
// SendAsap, NatsOptions::send_asap); unset: both batch (the defaults).
bool send_asap() {
  const char* v = std::getenv("CATGA_BENCH_SEND_ASAP");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

struct RawConn {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  explicit RawConn(const std::string& url, jsOptions* jo = nullptr) {
    natsOptions* o = nullptr;
    check(natsOptions_Create(&o), "raw options");
    check(natsOptions_SetURL(o, url.c_str()), "raw url");
    check(natsOptions_SetSendAsap(o, send_asap()), "raw send asap");
    check(natsConnection_Connect(&nc, o), "raw connect");
    natsOptions_Destroy(o);
    check(natsConnection_JetStream(&js, nc, jo), "raw JetStream");
  }
  ~RawConn() {
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
  }
};

std::atomic<int> raw_publish_errors{0};

void raw_ack_handler(jsCtx*, natsMsg* msg, jsPubAck*, jsPubAckErr* err, void*) {
  if (err != nullptr) raw_publish_errors++;
  natsMsg_Destroy(msg);  // with an ack handler the message comes back to us
}

// js_PublishMsgAsync with a window, the same subject and headers catga writes
// (each message with its own Nats-Msg-Id), then PublishAsyncComplete.
double raw_publish(const std::string& url, const std::string& body, int round) {
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = kWindow;
  jo.PublishAsync.AckHandler = &raw_ack_handler;
  RawConn c(url, &jo);
  std::vector<std::pair<std::string, std::string>> headers;
  const auto ctx = catga::Context::root();
  catga::wire::write_headers(ctx, "BenchEvent", [&](std::string_view k, std::string_view v) {
    if (k != catga::wire::kMsgId) headers.emplace_back(k, v);
  });
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = 10'000;
  char id[64];
  const auto t0 = Clock::now();
  for (int i = 0; i < kPublishCount; ++i) {
    natsMsg* m = nullptr;
    check(natsMsg_Create(&m, "catga.evt.BenchEvent", nullptr, body.data(), static_cast<int>(body.size())), "msg");
    std::snprintf(id, sizeof id, "raw-%d-%d", round, i);
    natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    for (const auto& [k, v] : headers) natsMsgHeader_Set(m, k.c_str(), v.c_str());
    check(js_PublishMsgAsync(c.js, &m, &po), "js_PublishMsgAsync");
  }
  check(js_PublishAsyncComplete(c.js, &po), "js_PublishAsyncComplete");
  return kPublishCount / seconds_since(t0);
}

// Keeps the raw consumer's read of each body from being optimised away.
volatile unsigned body_sink = 0;

// A durable pull consumer read with pull requests written by hand (as catga
// does: 3.4.1's Fetch is unsafe), two batches in flight; it reads each body
// and sends "+ACK" per message.
double raw_consume(const std::string& url, const std::string& durable) {
  // Named like catga's fetch thread ("catga-fetch"), for perf and top -H.
  pthread_setname_np(pthread_self(), "raw-consume");
  RawConn c(url);
  const auto t0 = Clock::now();
  jsConsumerConfig cfg;
  jsConsumerConfig_Init(&cfg);
  cfg.Durable = durable.c_str();
  cfg.FilterSubject = "catga.evt.BenchEvent";
  cfg.AckPolicy = js_AckExplicit;
  cfg.DeliverPolicy = js_DeliverAll;
  cfg.MaxAckPending = 1000;
  cfg.AckWait = 30'000'000'000LL;
  jsConsumerInfo* ci = nullptr;
  jsErrCode jerr{};
  check(js_AddConsumer(&ci, c.js, "CATGA_EVENTS", &cfg, nullptr, &jerr), "js_AddConsumer");
  jsConsumerInfo_Destroy(ci);
  natsInbox* inbox = nullptr;
  check(natsInbox_Create(&inbox), "inbox");
  const std::string wildcard = std::string(inbox) + ".*";
  const std::string reply_to = std::string(inbox) + ".1";
  natsSubscription* sub = nullptr;
  check(natsConnection_SubscribeSync(&sub, c.nc, wildcard.c_str()), "subscribe inbox");
  natsSubscription_SetPendingLimits(sub, -1, -1);
  const std::string next = "$JS.API.CONSUMER.MSG.NEXT.CATGA_EVENTS." + durable;
  char req[64];
  const int req_len = std::snprintf(req, sizeof req, "{\"batch\":%d,\"expires\":5000000000}", kBatch);
  long requested = 0, received = 0;
  while (received < kConsumeCount) {
    while (requested - received < 2 * kBatch) {
      check(natsConnection_PublishRequest(c.nc, next.c_str(), reply_to.c_str(), req, req_len), "pull request");
      requested += kBatch;
    }
    natsMsg* m = nullptr;
    const natsStatus s = natsSubscription_NextMsg(&m, sub, 1000);
    if (s == NATS_TIMEOUT) {
      requested = received;  // a request was lost: ask again
      continue;
    }
    check(s, "next message");
    const char* reply = natsMsg_GetReply(m);
    if (reply != nullptr) {
      // Any real consumer reads the body: touch every byte (no parsing).
      const char* data = natsMsg_GetData(m);
      const int len = natsMsg_GetDataLength(m);
      unsigned sum = 0;
      for (int i = 0; i < len; ++i) sum += static_cast<unsigned char>(data[i]);
      body_sink = body_sink + sum;
      natsConnection_Publish(c.nc, reply, "+ACK", 4);
      ++received;
    }
    natsMsg_Destroy(m);
  }
  const double rate = kConsumeCount / seconds_since(t0);
  // Up to two batches are still on their way. nats.c 3.4.1's read thread
  // may touch a subscription destroyed under it (nats.c issue 637, fixed in
  // 3.10): close the connection, which ends that thread, first.
  natsConnection_Close(c.nc);
  natsSubscription_Destroy(sub);
  natsInbox_Destroy(inbox);
  pthread_setname_np(pthread_self(), "bench_transport");
  return rate;
}

void raw_responder(natsConnection* nc, natsSubscription*, natsMsg* msg, void* reply) {
  const auto* r = static_cast<const std::string*>(reply);
  if (const char* to = natsMsg_GetReply(msg); to != nullptr) {
    natsConnection_Publish(nc, to, r->data(), static_cast<int>(r->size()));
  }
  natsMsg_Destroy(msg);
}

double raw_requests(natsConnection* client, const std::string& body) {
  const auto t0 = Clock::now();
  for (int i = 0; i < kRequestCount; ++i) {
    natsMsg* reply = nullptr;
    check(natsConnection_Request(&reply, client, "rawbench.cmd.BenchAdd", body.data(), static_cast<int>(body.size()),
                                 5000),
          "natsConnection_Request");
    natsMsg_Destroy(reply);
  }
  return kRequestCount / seconds_since(t0);
}

// --- catga ------------------------------------------------------------------

// Counts ended spans: the cost of recording them (ids, clocks, the virtual
// call) without an exporter's copy and queue (as bench_dispatch does).
struct CountingSink final : catga::SpanSink {
  void on_end(const catga::Span& s) noexcept override {
    ended.fetch_add(s.end_unix_ns != 0 ? 1 : 0, std::memory_order_relaxed);
  }
  std::atomic<std::uint64_t> ended{0};
};

std::unique_ptr<catga::nats::JetStreamTransport> make_transport(const std::string& url, const std::string& name,
                                                                std::shared_ptr<catga::Metrics> metrics = nullptr) {
  catga::nats::NatsOptions o;
  o.servers = {url};
  o.name = name;
  o.send_asap = send_asap();
  catga::nats::JetStreamOptions js;  // file storage, the defaults
  js.consumer.batch = kBatch;
  js.max_async_pending = kWindow;
  js.publish_timeout = 10s;
  js.metrics = std::move(metrics);
  auto t = catga::nats::JetStreamTransport::create(o, js);
  if (!t) {
    std::fprintf(stderr, "bench_transport: %s\n", t.error().message.c_str());
    std::exit(1);
  }
  return std::move(*t);
}

// The rates of each round (raw then catga, back to back), for stderr: the
// spread shows how much of a best-of ratio is noise.
struct Rounds {
  std::vector<double> raw, catga;

  std::string summary() const {
    std::string out;
    std::vector<double> ratios;
    char buf[64];
    for (std::size_t i = 0; i < raw.size() && i < catga.size(); ++i) {
      std::snprintf(buf, sizeof buf, "%s%.1fk/%.1fk", i == 0 ? "" : " ", raw[i] / 1e3, catga[i] / 1e3);
      out += buf;
      ratios.push_back(catga[i] / raw[i]);
    }
    if (ratios.empty()) return "skipped";
    std::sort(ratios.begin(), ratios.end());
    std::snprintf(buf, sizeof buf, "; median round ratio %.3f", ratios[ratios.size() / 2]);
    return out + buf;
  }
};

struct Percentiles {
  double p50 = 0, p99 = 0;
};

Percentiles percentiles(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))]; };
  return {at(0.50), at(0.99)};
}

// CATGA_BENCH_ONLY=publish|consume|ordered|latency|request runs one part (for
// profiling); the others print as 0.
bool wanted(const char* part) {
  const char* only = std::getenv("CATGA_BENCH_ONLY");
  return only == nullptr || *only == '\0' || std::strcmp(only, part) == 0;
}

std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

}  // namespace

int main() {
  // stdout carries only the JSON line: the library's log lines go to stderr.
  spdlog::set_default_logger(spdlog::stderr_color_mt("bench"));
  spdlog::set_level(spdlog::level::warn);
  catga::test::NatsServer server;  // file store in a temp dir, removed at exit
  const std::string url = server.url();
  std::fprintf(stderr, "bench_transport: nats-server at %s, load average %s\n", url.c_str(), load_average().c_str());

  auto transport = make_transport(url, "bench");
  // The same with a metrics registry: its rounds run beside the plain ones.
  auto metrics = std::make_shared<catga::Metrics>();
  auto metered = make_transport(url, "bench-metrics", metrics);
  auto sink = std::make_shared<CountingSink>();
  const auto event = make_event<BenchEvent>();
  const std::string body = nlohmann::json(event).dump();

  // --- publish: raw and catga rounds alternate, best of each -----------------
  double raw_pub = 0, cat_pub = 0, pub_allocs = 0;
  double raw_pub_cpu = 1e300, cat_pub_cpu = 1e300;  // client CPU µs per message, best round
  double raw_pub_srv = 1e300, cat_pub_srv = 1e300;  // nats-server CPU µs per message, best round
  const pid_t server_pid = server.pid();
  Rounds pub_rounds;
  std::vector<double> pub_metered;  // catga with metrics, per round
  double met_pub = 0;
  std::atomic<int> cat_errors{0};
  for (int r = 0; r < kRounds && wanted("publish"); ++r) {
    double c0 = cpu_us(), s0 = process_cpu_us(server_pid);
    pub_rounds.raw.push_back(raw_publish(url, body, r));
    raw_pub = std::max(raw_pub, pub_rounds.raw.back());
    raw_pub_cpu = std::min(raw_pub_cpu, (cpu_us() - c0) / kPublishCount);
    raw_pub_srv = std::min(raw_pub_srv, (process_cpu_us(server_pid) - s0) / kPublishCount);
    c0 = cpu_us();
    s0 = process_cpu_us(server_pid);
    const auto a0 = catga::bench::allocations();
    const auto t0 = Clock::now();
    for (int i = 0; i < kPublishCount; ++i) {
      auto s = transport->publish_async(event, [&cat_errors](const catga::nats::PublishOutcome& o) {
        if (!o.status) cat_errors++;
      });
      if (!s) {
        std::fprintf(stderr, "bench_transport: publish_async: %s\n", s.error().message.c_str());
        return 1;
      }
    }
    if (auto s = transport->flush(60s); !s) {
      std::fprintf(stderr, "bench_transport: flush: %s\n", s.error().message.c_str());
      return 1;
    }
    pub_rounds.catga.push_back(kPublishCount / seconds_since(t0));
    cat_pub = std::max(cat_pub, pub_rounds.catga.back());
    cat_pub_cpu = std::min(cat_pub_cpu, (cpu_us() - c0) / kPublishCount);
    cat_pub_srv = std::min(cat_pub_srv, (process_cpu_us(server_pid) - s0) / kPublishCount);
    pub_allocs = static_cast<double>(catga::bench::allocations() - a0) / kPublishCount;
    const auto m0 = Clock::now();
    for (int i = 0; i < kPublishCount; ++i) {
      auto s = metered->publish_async(event, [&cat_errors](const catga::nats::PublishOutcome& o) {
        if (!o.status) cat_errors++;
      });
      if (!s) return 1;
    }
    if (auto s = metered->flush(60s); !s) return 1;
    pub_metered.push_back(kPublishCount / seconds_since(m0));
    met_pub = std::max(met_pub, pub_metered.back());
  }
  if (raw_pub == 0) raw_pub = cat_pub = 1;  // skipped
  if (raw_publish_errors.load() != 0 || cat_errors.load() != 0) {
    std::fprintf(stderr, "bench_transport: publish errors: raw %d, catga %d\n", raw_publish_errors.load(),
                 cat_errors.load());
    return 1;
  }
  if (wanted("publish")) {
    std::fprintf(stderr,
                 "bench_transport: publish raw %.0f/s catga %.0f/s (%.1f C++ allocations/msg; client CPU/msg raw %.1f us, "
                 "catga %.1f us; nats-server CPU/msg raw %.1f us, catga %.1f us)\n",
                 raw_pub, cat_pub, pub_allocs, raw_pub_cpu, cat_pub_cpu, raw_pub_srv, cat_pub_srv);
    std::fprintf(stderr, "bench_transport: publish rounds raw/catga %s\n", pub_rounds.summary().c_str());
    std::fprintf(stderr, "bench_transport: publish with metrics %.0f/s (%.3f of catga without)\n", met_pub,
                 met_pub / cat_pub);
  }

  // --- consume: each round a new raw consumer and a new catga group ----------
  double raw_con = 0, cat_con = 0, con_allocs = 0;
  Rounds con_rounds;
  std::vector<double> con_traced, con_metered;  // catga with tracing / metrics, per round
  double trc_con = 0, met_con = 0;
  double raw_con_cpu = 1e300, cat_con_cpu = 1e300;
  double raw_con_srv = 1e300, cat_con_srv = 1e300;
  double raw_con_csw = 1e300, cat_con_csw = 1e300;  // context switches of this process per message
  if (wanted("consume")) {
    if (!wanted("publish")) {  // something to consume
      for (int i = 0; i < kConsumeCount; ++i) (void)transport->publish_async(event, nullptr);
      (void)transport->flush(60s);
    }
    catga::Mediator m;
    m.attach(*transport);
    catga::Mediator traced;  // spans of every (sampled) delivery
    traced.attach(*transport);
    traced.trace_to(sink);
    catga::Mediator with_metrics;
    with_metrics.attach(*metered);
    // One more group of catga: how fast it reads everything.
    auto catga_group = [&](catga::Mediator& med, const std::string& group) -> double {
      std::atomic<int> handled{0};
      catga::SubscribeOptions so;
      so.group = group;
      const auto t0 = Clock::now();
      auto sub = med.subscribe<BenchEvent>(so, [&handled](const BenchEvent& e) {
        catga::bench::keep(e.sent_ns);
        handled.fetch_add(1, std::memory_order_relaxed);
      });
      if (!sub) {
        std::fprintf(stderr, "bench_transport: subscribe: %s\n", sub.error().message.c_str());
        std::exit(1);
      }
      while (handled.load(std::memory_order_relaxed) < kConsumeCount) std::this_thread::sleep_for(1ms);
      const double rate = kConsumeCount / seconds_since(t0);
      sub->stop();
      return rate;
    };
    for (int r = 0; r < kRounds; ++r) {
      double c0 = cpu_us(), s0 = process_cpu_us(server_pid), w0 = context_switches();
      con_rounds.raw.push_back(raw_consume(url, "raw_" + std::to_string(r)));
      raw_con_csw = std::min(raw_con_csw, (context_switches() - w0) / kConsumeCount);
      w0 = context_switches();
      raw_con = std::max(raw_con, con_rounds.raw.back());
      raw_con_cpu = std::min(raw_con_cpu, (cpu_us() - c0) / kConsumeCount);
      raw_con_srv = std::min(raw_con_srv, (process_cpu_us(server_pid) - s0) / kConsumeCount);
      c0 = cpu_us();
      s0 = process_cpu_us(server_pid);
      std::atomic<int> handled{0};
      const auto a0 = catga::bench::allocations();
      const auto t0 = Clock::now();
      catga::SubscribeOptions so;
      so.group = "catga_" + std::to_string(r);
      auto sub = m.subscribe<BenchEvent>(so, [&handled](const BenchEvent& e) {
        catga::bench::keep(e.sent_ns);
        handled.fetch_add(1, std::memory_order_relaxed);
      });
      if (!sub) {
        std::fprintf(stderr, "bench_transport: subscribe: %s\n", sub.error().message.c_str());
        return 1;
      }
      while (handled.load(std::memory_order_relaxed) < kConsumeCount) std::this_thread::sleep_for(1ms);
      con_rounds.catga.push_back(kConsumeCount / seconds_since(t0));
      cat_con = std::max(cat_con, con_rounds.catga.back());
      cat_con_cpu = std::min(cat_con_cpu, (cpu_us() - c0) / kConsumeCount);
      cat_con_srv = std::min(cat_con_srv, (process_cpu_us(server_pid) - s0) / kConsumeCount);
      cat_con_csw = std::min(cat_con_csw, (context_switches() - w0) / kConsumeCount);
      con_allocs = static_cast<double>(catga::bench::allocations() - a0) / kConsumeCount;
      sub->stop();
      con_traced.push_back(catga_group(traced, "traced_" + std::to_string(r)));
      trc_con = std::max(trc_con, con_traced.back());
      con_metered.push_back(catga_group(with_metrics, "metered_" + std::to_string(r)));
      met_con = std::max(met_con, con_metered.back());
    }
  }
  if (raw_con == 0) raw_con = cat_con = 1;  // skipped
  if (wanted("consume")) {
    std::fprintf(stderr,
                 "bench_transport: consume raw %.0f/s catga %.0f/s (%.1f C++ allocations/msg; client CPU/msg raw %.1f us, "
                 "catga %.1f us; nats-server CPU/msg raw %.1f us, catga %.1f us)\n",
                 raw_con, cat_con, con_allocs, raw_con_cpu, cat_con_cpu, raw_con_srv, cat_con_srv);
    std::fprintf(stderr, "bench_transport: consume rounds raw/catga %s\n", con_rounds.summary().c_str());
    std::fprintf(stderr, "bench_transport: consume context switches/msg raw %.3f catga %.3f\n", raw_con_csw,
                 cat_con_csw);
    std::fprintf(stderr,
                 "bench_transport: consume traced %.0f/s (%.3f of catga untraced; %llu spans), with metrics %.0f/s "
                 "(%.3f)\n",
                 trc_con, trc_con / cat_con, static_cast<unsigned long long>(sink->ended.load()), met_con,
                 met_con / cat_con);
  }

  // --- ordered: an ordered group against a plain group, same keyed events ---
  double keyed_con = 0, ord_con = 0;
  Rounds ord_rounds;
  if (wanted("ordered")) {
    auto keyed = make_event<BenchEvent>();
    for (int i = 0; i < kConsumeCount; ++i) {
      (void)transport->publish_async(BenchKeyed{"k" + std::to_string(i % 1000), keyed.sent_ns, keyed.payload}, nullptr);
    }
    (void)transport->flush(60s);
    catga::Mediator m;
    m.attach(*transport);
    for (int r = 0; r < kRounds; ++r) {
      for (int ordered = 0; ordered < 2; ++ordered) {
        std::atomic<int> handled{0};
        auto on = [&handled](const BenchKeyed& e) {
          catga::bench::keep(e.sent_ns);
          handled.fetch_add(1, std::memory_order_relaxed);
        };
        const auto t0 = Clock::now();
        catga::SubscribeOptions so;
        so.group = (ordered ? "ord_" : "plain_") + std::to_string(r);
        auto sub = ordered ? m.subscribe_ordered<BenchKeyed>(so, on) : m.subscribe<BenchKeyed>(so, on);
        if (!sub) {
          std::fprintf(stderr, "bench_transport: subscribe: %s\n", sub.error().message.c_str());
          return 1;
        }
        while (handled.load(std::memory_order_relaxed) < kConsumeCount) std::this_thread::sleep_for(1ms);
        const double rate = kConsumeCount / seconds_since(t0);
        (ordered ? ord_rounds.catga : ord_rounds.raw).push_back(rate);
        (ordered ? ord_con : keyed_con) = std::max(ordered ? ord_con : keyed_con, rate);
        sub->stop();
      }
    }
    std::fprintf(stderr, "bench_transport: keyed consume plain %.0f/s ordered %.0f/s (16 partitions, 1 worker)\n",
                 keyed_con, ord_con);
    std::fprintf(stderr, "bench_transport: ordered rounds plain/ordered %s\n", ord_rounds.summary().c_str());
  }
  if (keyed_con == 0) keyed_con = ord_con = 1;

  // --- e2e latency: Mediator::publish (stored when it returns) → handler -----
  Percentiles lat;
  if (wanted("latency")) {
    catga::Mediator m;
    m.attach(*transport);
    std::vector<double> samples(kLatencySamples, 0.0);
    std::atomic<int> seen{0};
    catga::SubscribeOptions so;
    so.group = "latency";
    auto sub = m.subscribe<BenchPing>(so, [&](const BenchPing& e) {
      const int i = seen.load(std::memory_order_relaxed);
      if (i < kLatencySamples) samples[static_cast<std::size_t>(i)] = static_cast<double>(now_ns() - e.sent_ns) / 1e3;
      seen.store(i + 1, std::memory_order_release);
    });
    if (!sub) return 1;
    auto ping = make_event<BenchPing>();
    const auto period = std::chrono::nanoseconds(1'000'000'000 / kLatencyRate);
    auto next = Clock::now();
    for (int i = 0; i < kLatencySamples; ++i) {
      std::this_thread::sleep_until(next);
      next += period;
      ping.sent_ns = now_ns();
      if (auto s = m.publish(ping); !s) {
        std::fprintf(stderr, "bench_transport: publish: %s\n", s.error().message.c_str());
        return 1;
      }
    }
    const auto deadline = Clock::now() + 30s;
    while (seen.load(std::memory_order_acquire) < kLatencySamples && Clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
    sub->stop();
    lat = percentiles(samples);
  }

  // --- request/reply ---------------------------------------------------------
  double raw_req = 0, cat_req = 0, trc_req = 0;
  if (wanted("request")) {
    RawConn responder(url), client(url);
    const std::string reply = R"({"ok":true,"value":3})";
    natsSubscription* rsub = nullptr;
    check(natsConnection_QueueSubscribe(&rsub, responder.nc, "rawbench.cmd.BenchAdd", "bench", &raw_responder,
                                        const_cast<std::string*>(&reply)),
          "raw responder");
    check(natsConnection_Flush(responder.nc), "flush");

    auto server_transport = make_transport(url, "bench-service");
    catga::Mediator service;
    service.handle<BenchAdd>([](const BenchAdd& a) { return a.a + a.b; });
    service.attach(*server_transport);
    auto serving = service.serve<BenchAdd>("bench");
    if (!serving) return 1;
    catga::Mediator caller;
    caller.attach(*transport);
    caller.route_remote<BenchAdd>();
    // Tracing on at both ends: send, client and server spans per request.
    catga::Mediator traced_service;
    traced_service.handle<BenchAddTraced>([](const BenchAddTraced& a) { return a.a + a.b; });
    traced_service.attach(*server_transport);
    traced_service.trace_to(sink);
    auto traced_serving = traced_service.serve<BenchAddTraced>("bench-traced");
    if (!traced_serving) return 1;
    catga::Mediator traced_caller;
    traced_caller.attach(*transport);
    traced_caller.route_remote<BenchAddTraced>();
    traced_caller.trace_to(sink);
    const std::string req_body = nlohmann::json(BenchAdd{1, 2}).dump();

    for (int r = 0; r < kRounds; ++r) {
      raw_req = std::max(raw_req, raw_requests(client.nc, req_body));
      const auto t0 = Clock::now();
      for (int i = 0; i < kRequestCount; ++i) {
        auto v = caller.send(BenchAdd{1, 2});
        if (!v || *v != 3) {
          std::fprintf(stderr, "bench_transport: send: %s\n", v ? "wrong value" : v.error().message.c_str());
          return 1;
        }
      }
      cat_req = std::max(cat_req, kRequestCount / seconds_since(t0));
      const auto t1 = Clock::now();
      for (int i = 0; i < kRequestCount; ++i) {
        auto v = traced_caller.send(BenchAddTraced{1, 2});
        if (!v || *v != 3) {
          std::fprintf(stderr, "bench_transport: traced send: %s\n", v ? "wrong value" : v.error().message.c_str());
          return 1;
        }
      }
      trc_req = std::max(trc_req, kRequestCount / seconds_since(t1));
    }
    std::fprintf(stderr, "bench_transport: requests catga %.0f/s traced %.0f/s (%.3f)\n", cat_req, trc_req,
                 trc_req / cat_req);
    traced_serving->stop();
    serving->stop();
    (void)server_transport->stop(5s);
    natsSubscription_Unsubscribe(rsub);
    natsSubscription_Destroy(rsub);
  }
  if (raw_req == 0) raw_req = cat_req = trc_req = 1;
  if (met_pub == 0) met_pub = cat_pub;
  if (trc_con == 0) trc_con = met_con = cat_con;
  (void)metered->stop(10s);
  (void)transport->stop(10s);
  std::fprintf(stderr, "bench_transport: done, load average %s\n", load_average().c_str());

  std::printf(
      "{\"bench\":\"transport\",\"raw_publish_per_s\":%.0f,\"publish_per_s\":%.0f,\"publish_ratio\":%.3f,"
      "\"raw_consume_per_s\":%.0f,\"consume_per_s\":%.0f,\"consume_ratio\":%.3f,\"e2e_p50_us\":%.0f,"
      "\"e2e_p99_us\":%.0f,\"raw_request_per_s\":%.0f,\"request_per_s\":%.0f,\"request_ratio\":%.3f,"
      "\"keyed_consume_per_s\":%.0f,\"ordered_consume_per_s\":%.0f,\"ordered_ratio\":%.3f,"
      "\"publish_metrics_per_s\":%.0f,\"publish_metrics_ratio\":%.3f,\"consume_traced_per_s\":%.0f,"
      "\"consume_traced_ratio\":%.3f,\"consume_metrics_per_s\":%.0f,\"consume_metrics_ratio\":%.3f,"
      "\"request_traced_per_s\":%.0f,\"request_traced_ratio\":%.3f}\n",
      raw_pub, cat_pub, cat_pub / raw_pub, raw_con, cat_con, cat_con / raw_con, lat.p50, lat.p99, raw_req, cat_req,
      cat_req / raw_req, keyed_con, ord_con, ord_con / keyed_con, met_pub, met_pub / cat_pub, trc_con,
      trc_con / cat_con, met_con, met_con / cat_con, trc_req, trc_req / cat_req);
  return 0;
}
