#pragma once
// The transport conformance suite's view of a transport: a Broker makes
// transport instances that share consumer groups and dead letters, and says
// what its transport cannot do. Each conformance binary links the cases
// (*_test.cpp here) with one file that defines make_broker() for its
// transport (in_memory_broker.cpp, jetstream_broker.cpp); docs/testing.md,
// "Transport conformance", tells how a new transport joins.
//
//   auto broker = conformance::make_broker();
//   auto a = broker->connect("a");   // one process's transport
//   catga::Mediator m;
//   m.attach(*a);

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "catga/transport.hpp"

namespace conformance {

// What a transport can do beyond the cases every transport must pass.
struct Capabilities {
  // restart(): the broker goes away and comes back at the same address with
  // the same storage while transport instances stay connected.
  bool restart = false;
  // A group's position survives the transport instance that consumed it: a
  // new instance subscribing to the group gets what was published since,
  // and nothing the old one acknowledged.
  bool durable_across_instances = false;
};

// A dead letter as every transport must report it (the DLQ headers of
// docs/wire-format.md, "Dead letters").
struct DeadLetterCopy {
  std::string type;
  std::string group;             // Catga-Group
  std::string error;             // Catga-Error: why, readable
  std::string error_code;        // Catga-Error-Code
  int deliveries = 0;            // Catga-Deliveries
  std::string original_subject;  // Catga-Original-Subject
  std::string original_msg_id;   // the Nats-Msg-Id it was published with
  std::string body;              // the message body, unchanged
};

// One broker per test case: a fresh one holds nothing from other cases.
class Broker {
 public:
  virtual ~Broker() = default;
  virtual Capabilities capabilities() const = 0;
  // A transport instance on this broker, as a separate process would have
  // it. All instances share groups, streams and dead letters. The broker
  // may keep the instance alive longer than the caller does.
  virtual std::shared_ptr<catga::Transport> connect(const std::string& name) = 0;
  // Waits until nothing is pending, delayed or unacknowledged in any group
  // with a live subscription: no delivery can follow. False after `timeout`.
  virtual bool settled(std::chrono::milliseconds timeout) = 0;
  // Dead letters of `type`, oldest first.
  virtual std::vector<DeadLetterCopy> dead_letters(std::string_view type) = 0;
  // Stops the broker and starts it again (capabilities().restart only).
  virtual void restart() = 0;
};

// Defined once per conformance binary.
std::unique_ptr<Broker> make_broker();

}  // namespace conformance
