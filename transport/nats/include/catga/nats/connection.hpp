#pragma once
// Connection: one NATS connection, shared by the transport and the stores.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "catga/nats/options.hpp"
#include "catga/result.hpp"

namespace catga::nats {

namespace detail {
struct ConnectionAccess;  // catga::nats's own way in (private header connection_impl.hpp)
}  // namespace detail

enum class ConnectionState { connecting, connected, reconnecting, draining, closed };

std::string_view to_string(ConnectionState state) noexcept;

// A NATS connection with the library's error, disconnect, reconnect and
// close handlers installed (they log through spdlog and keep the state and
// last error for health checks). If no server is up yet, connect() still
// succeeds (state `connecting`) and the library keeps trying in the
// background; wait_connected() waits for it (a service's start-up:
// catga::nats::Startup::connect, which also says why it waits). Thread-safe.
//
//   auto conn = catga::nats::Connection::connect(catga::nats::NatsOptions::from_env()).value();
//   if (!conn->wait_connected(std::chrono::seconds(10))) ...;
//   auto transport = catga::nats::JetStreamTransport::create(conn).value();
//
// Code that calls nats.c itself reaches the connection's nats.c handles
// through catga/nats/native/connection.hpp.
class Connection {
 public:
  // Tries the servers once. A server that answers but refuses us (wrong
  // password or token, TLS failure, bad credentials file) fails here with
  // an error naming the cause. When no server answers yet and
  // retry_on_failed_connect is set, it succeeds (state `connecting`) and
  // keeps trying in the background.
  static Result<std::shared_ptr<Connection>> connect(const NatsOptions& options);

  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  ConnectionState state() const noexcept;
  bool connected() const noexcept { return state() == ConnectionState::connected; }
  // Waits until connected; `timeout` error (retryable) when the time is up,
  // `unavailable` when the connection is closed.
  Status wait_connected(std::chrono::milliseconds timeout) const;
  // Times the connection came back after a loss.
  std::uint64_t reconnects() const noexcept;
  // Connect rounds (every server tried once) that failed since the
  // connection was last up: while a first connect or a reconnect keeps
  // failing, how often it has tried; 0 while connected.
  std::uint64_t failed_attempts() const noexcept;
  // The last asynchronous error or disconnect reason, if any (while no
  // server answers: why, e.g. "no NATS server reachable at nats://...").
  std::optional<Error> last_error() const;
  // The server URL currently connected to (no credentials), or empty.
  std::string connected_url() const;
  const std::string& name() const noexcept;

  // Drains (subscriptions, then pending publishes) for at most `timeout`,
  // then closes. Later calls do nothing.
  Status close(std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  struct Impl;  // nats.c side (connection_impl.hpp)
  friend struct detail::ConnectionAccess;

  explicit Connection(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace catga::nats
