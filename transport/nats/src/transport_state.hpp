#pragma once
// What the transport shares with its subscriptions, responders and publisher.

#include <charconv>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "catga/nats/connection.hpp"
#include "catga/nats/options.hpp"
#include "catga/transport.hpp"
#include "catga/wire.hpp"
#include "connection_impl.hpp"
#include "log.hpp"
#include "meters.hpp"

namespace catga::nats::detail {

struct TransportState {
  std::shared_ptr<Connection> connection;
  JetStreamOptions options;
  std::string events_stream;
  std::string dead_letter_stream;

  natsConnection* nc() const noexcept { return impl_of(*connection).conn(); }
  jsCtx* js() const noexcept { return impl_of(*connection).jet(); }

  // Series of options.metrics by type (get() is null without a registry).
  MetersByType<PublishMeters> publish_meters;
  MetersByType<RequestMeters> request_meters;

  // The subject of an event into `out`: <prefix>.evt.<Type>, or for a keyed
  // type <prefix>.evt.<Type>.<partition> (docs/wire-format.md, "Keyed
  // events"), the partition from its Catga-Ordering-Key header ("" when absent).
  void event_subject(std::string& out, const OutboundMessage& m) const {
    out.assign(options.prefix).append(".evt.").append(m.info.name);
    if (!m.info.keyed()) return;
    const auto key = m.context.headers.get(wire::kOrderingKey).value_or(std::string_view{});
    char buf[12];
    const auto r = std::to_chars(buf, buf + sizeof buf, wire::partition_of(key, options.partitions));
    out.push_back('.');
    out.append(buf, r.ptr);
  }

  // Remembers the latest failure for health() (and logs it once here).
  void note_error(const Error& e) {
    log().warn("catga.nats [{}] {}: {}", connection->name(), e.code, e.message);
    std::lock_guard lock(mu_);
    last_error_ = e;
  }
  std::optional<Error> last_error() const {
    std::lock_guard lock(mu_);
    return last_error_;
  }

  // Creates the streams again when they are gone (memory storage after a
  // server restart, an operator deleted them) and options.provision is on.
  // Called after "no stream answered" failures; at most every 500 ms.
  Status reprovision();

 private:
  mutable std::mutex mu_;
  std::optional<Error> last_error_;
  std::mutex provision_mu_;
  std::chrono::steady_clock::time_point last_provision_{};
};

}  // namespace catga::nats::detail
