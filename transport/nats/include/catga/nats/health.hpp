#pragma once
// Health of a JetStreamTransport and of its consumer groups
// (JetStreamTransport::health(); a readiness probe's input).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "catga/nats/connection.hpp"
#include "catga/result.hpp"

namespace catga::nats {

// Lag and state of one consumer group subscription, as the server sees it.
struct ConsumerHealth {
  std::string type;
  std::string group;
  std::string consumer;              // durable name on the events stream
  bool reachable = false;            // consumer info could be read
  std::uint64_t num_pending = 0;     // in the stream, not yet delivered to the group
  std::uint64_t num_ack_pending = 0; // delivered, not yet acknowledged
  std::uint64_t num_redelivered = 0;
  std::uint64_t handled = 0;         // acked by this process
  std::uint64_t dead_lettered = 0;   // copied to the dead letters by this process
  std::optional<Error> error;        // why it is not reachable

  std::uint64_t lag() const noexcept { return num_pending + num_ack_pending; }
};

// What a readiness probe needs. ready(): connected and the events stream
// answers.
//
//   auto h = transport->health();
//   if (!h.ready()) return 503;
//   for (auto& c : h.consumers) metrics.gauge("lag", c.lag(), {{"group", c.group}});
struct Health {
  ConnectionState connection = ConnectionState::closed;
  std::string server_url;  // without credentials
  std::uint64_t reconnects = 0;
  bool stream_reachable = false;              // the events stream
  bool dead_letter_stream_reachable = false;
  std::uint64_t stream_messages = 0;
  std::uint64_t dead_letters = 0;             // messages in the dead-letter stream
  std::vector<ConsumerHealth> consumers;      // one per live subscription
  std::size_t responders = 0;                 // live serve() subscriptions
  bool stopped = false;
  std::optional<Error> last_error;            // latest failure seen (transport or connection)

  bool ready() const noexcept { return !stopped && connection == ConnectionState::connected && stream_reachable; }
};

}  // namespace catga::nats
