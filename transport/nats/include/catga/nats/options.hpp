#pragma once
// Settings of the NATS connection and of the JetStream transport
// (every field, its unit and its environment variable: docs/configuration.md).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "catga/result.hpp"

namespace catga {
class Metrics;  // catga/pipeline/metrics.hpp
}

namespace catga::nats {

// TLS settings. Setting any file (or `enabled`) turns TLS on.
struct TlsOptions {
  bool enabled = false;
  std::string ca_file;    // PEM bundle trusted for the server certificate ($NATS_CA)
  std::string cert_file;  // client certificate, PEM ($NATS_CERT)
  std::string key_file;   // client private key, PEM ($NATS_KEY)
  bool verify = true;     // false skips server certificate verification (tests only)
  std::string expected_hostname;  // when the certificate names another host than the URL

  bool active() const noexcept { return enabled || !ca_file.empty() || !cert_file.empty() || !key_file.empty(); }
};

// How to reach NATS. Reconnects forever by default (with growing,
// jittered pauses), and a first connect while no server is up yet keeps
// retrying in the background instead of failing (each failed round is
// counted, and logged at warn at most every 5 s).
//
//   catga::nats::NatsOptions o = catga::nats::NatsOptions::from_env();  // NATS_URL, NATS_USER, ...
//   o.name = "billing";
//   auto conn = catga::nats::Connection::connect(o).value();
struct NatsOptions {
  std::vector<std::string> servers{"nats://127.0.0.1:4222"};  // $NATS_URL (comma separated)
  std::string name = "catga";                                 // connection name shown by the server ($NATS_NAME)
  // Credentials: never logged.
  std::string user;              // $NATS_USER
  std::string password;          // $NATS_PASSWORD
  std::string token;             // $NATS_TOKEN
  std::string credentials_file;  // JWT + NKey seed .creds file ($NATS_CREDS)
  TlsOptions tls;

  std::chrono::milliseconds connect_timeout{2'000};  // one TCP/TLS connect attempt
  // Reconnect pauses: `reconnect_wait` doubling per round over the server
  // list up to `max_reconnect_wait`, plus up to `reconnect_jitter` (TLS:
  // `reconnect_jitter_tls`) random extra.
  std::chrono::milliseconds reconnect_wait{100};
  std::chrono::milliseconds max_reconnect_wait{2'000};
  std::chrono::milliseconds reconnect_jitter{100};
  std::chrono::milliseconds reconnect_jitter_tls{1'000};
  int max_reconnect = -1;  // attempts; -1 = forever
  // Keep retrying a first connect that finds no server (in the background).
  // Auth and TLS failures are still reported by connect() at once.
  bool retry_on_failed_connect = true;
  // Bytes buffered while reconnecting (core publishes, acks); beyond it
  // publishing fails with `unavailable`.
  int reconnect_buffer_bytes = 8 * 1024 * 1024;
  std::chrono::milliseconds ping_interval{20'000};
  int max_pings_out = 3;
  // Write each message to the socket at once (nats.c's SendAsap) instead of
  // leaving it to nats.c's flusher thread, which batches writes but sends a
  // lone message only when it wakes. Measured on loopback (docs/benchmark-history.md,
  // "transport", send_asap): sequential requests 3.2-4.8 k/s instead of
  // ~1 k/s, but consuming ~55 k/s instead of ~95 k/s (every ack is a
  // write). For services that wait on replies more than they consume.
  bool send_asap = false;

  // Reads NATS_URL, NATS_NAME, NATS_USER, NATS_PASSWORD, NATS_TOKEN,
  // NATS_CREDS, NATS_CA, NATS_CERT, NATS_KEY over `defaults` (unset or empty
  // variables keep the default).
  static NatsOptions from_env(NatsOptions defaults);
  static NatsOptions from_env();

  // Rejects settings that cannot work (no server, cert without key, ...).
  Status validate() const;
};

// Server URLs of a comma-separated list as NATS_URL gives them: each item
// trimmed of spaces, empty items dropped (from_env reads NATS_URL with it;
// use it for a --nats-url flag too, so both read the same way).
//
//   split_server_urls("nats://a:4222, nats://b:4222,")  // {"nats://a:4222", "nats://b:4222"}
std::vector<std::string> split_server_urls(std::string_view urls);

// How a service waits at start-up for NATS, JetStream, its streams and
// buckets (catga::nats::Startup). By default it waits as long as it takes:
// a broker, stream leader or bucket that is briefly unavailable is tried
// again with backoff, and only a configuration error (bad credentials, TLS,
// validation, a stream that exists with other settings) ends the wait.
//
//   catga::nats::StartupOptions s;
//   s.timeout = std::chrono::minutes(2);  // give up (exit) after 2 min instead
struct StartupOptions {
  // Give up when start-up has taken this long (measured from the Startup's
  // creation); 0: never, wait until cancel().
  std::chrono::milliseconds timeout{0};
  // Pause after the first failed try of a step, doubling per failure up to
  // `max_backoff`, plus up to a quarter of it at random.
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{5'000};
  // How long one try of a step may take (pass it to the steps' own
  // timeouts); also about how long cancel() may wait for a try in flight.
  std::chrono::milliseconds attempt_timeout{5'000};
  // A step's first failure is logged at warn, then at most one line per
  // interval (the others at debug).
  std::chrono::milliseconds warn_interval{10'000};

  // Rejects negative or zero durations (timeout may be 0).
  Status validate() const;
};

enum class StorageType { file, memory };

// A stream the transport creates (or checks, when it exists). Fields left at
// their zero value mean "server default / unlimited".
struct StreamOptions {
  std::string name;  // empty: derived from the prefix ("CATGA_EVENTS", "CATGA_DLQ")
  StorageType storage = StorageType::file;
  int replicas = 1;
  std::chrono::nanoseconds max_age{0};                               // 0: keep forever
  std::chrono::nanoseconds duplicate_window = std::chrono::minutes(2);  // Nats-Msg-Id dedup window
  std::int64_t max_bytes = -1;                                       // -1: unlimited
  std::int64_t max_msgs = -1;                                        // -1: unlimited
};

// Where a consumer group that is created now starts in the stream.
enum class StartPosition {
  all,  // every message the stream still holds (a new group catches up)
  new_messages,  // only messages published after the group was created
  since,  // messages the stream stored at or after ConsumerOptions::start_time
          // (up to 100 ms earlier: see docs/transports.md, "Per-subscription settings")
};

// JetStream settings of consumer groups (the portable ones, retry policy,
// worker count, ack wait and start position, are in catga::SubscribeOptions,
// whose ack_wait and start override these for one subscription).
struct ConsumerOptions {
  // Messages asked for per pull request; at most 3 x batch are fetched ahead
  // of the running handlers (one batch being handled, two on their way).
  int batch = 128;
  // How long one pull request waits at the server for messages. A stop lets
  // the open requests run out first (nats-server 2.9 mishandles requests
  // whose inbox is gone), so this also bounds how long stopping one
  // subscription takes; an idle member sends about two requests per period.
  std::chrono::milliseconds fetch_expires{1'000};
  // How long the server waits for an ack before redelivering (set on the consumer).
  std::chrono::milliseconds ack_wait{30'000};
  // Unacknowledged messages the server hands out to the whole group at once.
  int max_ack_pending = 1'000;
  // How often a message held by a member — running, or fetched and waiting
  // for a worker — tells the server it is still wanted ("+WPI"); 0:
  // ack_wait / 3.
  std::chrono::milliseconds in_progress_interval{0};
  // How much work a member fetches ahead of its running handlers, judged by
  // their measured duration: with 200 ms handlers and one worker about 5
  // messages, with fast handlers up to 3 x batch. Slow work stays spread over
  // the group instead of queued at one member.
  std::chrono::milliseconds fetch_ahead{1'000};
  // How long a dead-letter copy may take to be stored before the message
  // is nak'ed instead (and retried later).
  std::chrono::milliseconds dead_letter_timeout{5'000};
  // Largest body a handler is given; a larger message is dead-lettered with
  // error code "too_large" without being decoded (0: no limit).
  std::size_t max_body_bytes = 512 * 1024;
  StartPosition start = StartPosition::all;
  std::chrono::system_clock::time_point start_time{};  // StartPosition::since
};

// Settings of JetStreamTransport.
//
//   catga::nats::JetStreamOptions js;
//   js.prefix = "shop";                       // shop.evt.<Type>, streams SHOP_EVENTS / SHOP_DLQ
//   js.events.storage = catga::nats::StorageType::memory;
//   js.consumer.ack_wait = std::chrono::seconds(10);
struct JetStreamOptions {
  // Subject prefix: <prefix>.evt.<Type>, <prefix>.cmd.<Type>, <prefix>.dlq.<Type>.
  std::string prefix = "catga";
  StreamOptions events;        // subjects <prefix>.evt.>
  StreamOptions dead_letters;  // subjects <prefix>.dlq.>
  // Create the streams (or check an existing one matches) when the transport
  // starts. Off: they must exist (made by an operator).
  bool provision = true;
  ConsumerOptions consumer;
  // Deadline of publish() and request() when the context has none.
  std::chrono::milliseconds publish_timeout{5'000};
  std::chrono::milliseconds request_timeout{5'000};
  // Handler threads per serve() call (requests are answered off nats.c's threads).
  std::size_t serve_workers = 4;
  // Requests one serve() call holds at once, queued or running; one more is
  // answered at once with a retryable `overloaded` error instead of waiting
  // (memory stays bounded, callers learn it in a round trip rather than at
  // their deadline). 0: 32 x serve_workers (128 by default), which four
  // workers with 150 ms handlers empty within the 5 s request_timeout.
  //
  //   js.serve_workers = 8;
  //   js.serve_max_in_flight = 64;  // 8 queued per worker: fast fail, short waits
  std::size_t serve_max_in_flight = 0;
  // In-flight window of publish_async(); a full window makes it wait.
  std::size_t max_async_pending = 4'096;
  // Partitions of keyed events (CATGA_ORDERING_KEY): a keyed event goes to
  // <prefix>.evt.<Type>.<partition_of(key, partitions)>, and an ordered group
  // runs one consumer per partition. The publisher picks the partition, so
  // every service of a deployment must use the same count; changing it
  // reorders keys in flight (docs/transports.md, "Ordered groups").
  std::uint32_t partitions = 16;
  // Ordered groups: how long a member's claim on a partition (and its place
  // in the member list) lasts without renewal. Members renew every quarter
  // of it; a crashed member's partitions move after at most about 1.5 x
  // this, a leaving member's within about half of it.
  std::chrono::milliseconds partition_lease{6'000};
  // How long create() waits for a server that is not up yet.
  std::chrono::milliseconds startup_timeout{30'000};
  // How long the destructor's stop() may take.
  std::chrono::milliseconds stop_timeout{10'000};
  // Where the transport records its metrics (published, consumed,
  // redelivered, dead-lettered, lag, publish/ack latency, request outcomes;
  // docs/operations.md, "Library metrics"); null, the default, records nothing.
  //
  //   js.metrics = metrics;  // the registry /metrics renders
  std::shared_ptr<catga::Metrics> metrics;

  // The bound in effect: serve_max_in_flight, or 32 x serve_workers when 0.
  std::size_t serve_bound() const noexcept;
  // The stream names in effect (StreamOptions::name, else derived from the prefix).
  std::string events_stream() const;
  std::string dead_letter_stream() const;
};

}  // namespace catga::nats
