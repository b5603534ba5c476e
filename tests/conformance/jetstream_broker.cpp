// The conformance suite on JetStream: a nats-server of its own per case
// (tests/support/nats_server.hpp, file store), JetStreamTransport instances
// with the library's default options, each on its own connection as separate
// processes would have them; dead letters read back through
// catga::nats::DeadLetterQueue.
#include <memory>
#include <mutex>
#include <string>

#include "broker.hpp"
#include "catga/nats/dead_letters.hpp"
#include "catga/nats/jetstream_transport.hpp"
#include "catga/wire.hpp"
#include "nats_server.hpp"
#include "wait_for.hpp"

namespace conformance {
namespace {

class JetStreamBroker final : public Broker {
 public:
  Capabilities capabilities() const override { return {.restart = true, .durable_across_instances = true}; }

  std::shared_ptr<catga::Transport> connect(const std::string& name) override {
    catga::nats::NatsOptions nats;
    nats.servers = {server_.url()};
    nats.name = name;
    auto t = catga::nats::JetStreamTransport::create(nats);
    if (!t) throw catga::Exception(t.error());
    std::shared_ptr<catga::nats::JetStreamTransport> shared = std::move(*t);
    std::lock_guard lock(mu_);
    instances_.push_back(shared);
    return shared;
  }

  bool settled(std::chrono::milliseconds timeout) override {
    return catga::test::wait_for([&] { return every_group_settled(); }, timeout);
  }

  std::vector<DeadLetterCopy> dead_letters(std::string_view type) override {
    std::vector<DeadLetterCopy> out;
    auto letters = dead_letter_queue().list(type);
    if (!letters) throw catga::Exception(letters.error());
    for (const auto& d : *letters) {
      out.push_back({.type = d.type,
                     .group = d.header_or(catga::wire::kGroup),
                     .error = d.header_or(catga::wire::kError),
                     .error_code = d.header_or(catga::wire::kErrorCode),
                     .deliveries = std::stoi(d.header_or(catga::wire::kDeliveries, "0")),
                     .original_subject = d.header_or(catga::wire::kOriginalSubject),
                     .original_msg_id = d.header_or(catga::wire::kOriginalMsgId),
                     .body = d.body});
    }
    return out;
  }

  void restart() override { server_.restart(); }

 private:
  // Every live subscription of every instance sees its group empty and
  // acknowledged (the server's numbers, so nothing can be redelivered).
  bool every_group_settled() {
    std::lock_guard lock(mu_);
    for (const auto& weak : instances_) {
      auto t = weak.lock();
      if (!t || t->stopped()) continue;
      for (const auto& c : t->health().consumers) {
        if (!c.reachable || c.lag() != 0) return false;
      }
    }
    return true;
  }

  catga::nats::DeadLetterQueue& dead_letter_queue() {
    std::lock_guard lock(mu_);
    if (!dlq_) {
      catga::nats::NatsOptions nats;
      nats.servers = {server_.url()};
      nats.name = "conformance-dlq";
      auto conn = catga::nats::Connection::connect(nats);
      if (!conn) throw catga::Exception(conn.error());
      dlq_ = std::make_unique<catga::nats::DeadLetterQueue>(*conn);
    }
    return *dlq_;
  }

  catga::test::NatsServer server_;
  std::mutex mu_;
  std::vector<std::weak_ptr<catga::nats::JetStreamTransport>> instances_;
  std::unique_ptr<catga::nats::DeadLetterQueue> dlq_;
};

}  // namespace

std::unique_ptr<Broker> make_broker() { return std::make_unique<JetStreamBroker>(); }

}  // namespace conformance
