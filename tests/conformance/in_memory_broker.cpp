// The conformance suite on the in-memory transport: one InMemoryTransport
// with the library's default options is the broker; every "instance" is
// that same transport (the process is the broker), so it cannot be
// restarted and a group does not outlive it.
#include <stdexcept>
#include <string>

#include "broker.hpp"
#include "catga/transport/in_memory.hpp"
#include "catga/wire.hpp"

namespace conformance {
namespace {

std::string header_or_empty(const catga::Headers& headers, std::string_view name) {
  auto v = headers.get(name);
  return v ? std::string(*v) : std::string();
}

class InMemoryBroker final : public Broker {
 public:
  Capabilities capabilities() const override { return {.restart = false, .durable_across_instances = false}; }

  std::shared_ptr<catga::Transport> connect(const std::string&) override {
    return std::shared_ptr<catga::Transport>(transport_, transport_.get());
  }

  bool settled(std::chrono::milliseconds timeout) override { return transport_->wait_idle(timeout); }

  std::vector<DeadLetterCopy> dead_letters(std::string_view type) override {
    std::vector<DeadLetterCopy> out;
    for (const auto& d : transport_->dead_letters()) {
      if (d.type != type) continue;
      const auto& h = d.message.headers;
      // The in-memory transport reports group, error and count as fields.
      out.push_back({.type = d.type,
                     .group = d.group,
                     .error = d.error.message,
                     .error_code = d.error.code,
                     .deliveries = d.deliveries,
                     .original_subject = header_or_empty(h, catga::wire::kOriginalSubject),
                     .original_msg_id = header_or_empty(h, catga::wire::kMsgId),
                     .body = d.message.body});
    }
    return out;
  }

  void restart() override { throw std::logic_error("the in-memory transport has no broker to restart"); }

 private:
  std::shared_ptr<catga::InMemoryTransport> transport_ = std::make_shared<catga::InMemoryTransport>();
};

}  // namespace

std::unique_ptr<Broker> make_broker() { return std::make_unique<InMemoryBroker>(); }

}  // namespace conformance
