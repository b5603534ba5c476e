// outbox_publisher: the process of the outbox crash test.
//
//   outbox_publisher --db outbox.db --url nats://... --mode publish --count 1000
//     publishes `count` Deposited events through an OutboxTransport whose
//     broker is down, prints "published N: stored_locally=N pending=N" and
//     waits to be killed.
//   outbox_publisher --db outbox.db --url nats://... --mode relay
//     opens the same outbox, connects, waits until the relay drained it,
//     prints "drained N" and exits 0.
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <string>

#include "catga/mediator.hpp"
#include "catga/nats/jetstream_transport.hpp"
#include "catga/outbox/outbox_transport.hpp"
#include "outbox_messages.hpp"

using namespace std::chrono_literals;

int main(int argc, char** argv) try {
  std::string db, url, mode;
  int count = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--db") db = v;
    else if (k == "--url") url = v;
    else if (k == "--mode") mode = v;
    else if (k == "--count") count = std::stoi(v);
  }
  auto store = catga::outbox::OutboxStore::open({.path = db}).value();
  catga::nats::NatsOptions nats;
  nats.servers = {url};
  nats.name = "outbox-" + mode;
  nats.max_reconnect_wait = 500ms;
  catga::nats::JetStreamOptions js;
  js.startup_timeout = 2s;  // the relay calls again until the server is there
  js.publish_timeout = 3s;
  auto transport = catga::outbox::OutboxTransport::create(
                       store,
                       [nats, js]() -> catga::Result<std::shared_ptr<catga::Transport>> {
                         auto t = catga::nats::JetStreamTransport::create(nats, js);
                         if (!t) return std::move(t).error();
                         return std::shared_ptr<catga::Transport>(std::move(*t));
                       })
                       .value();

  if (mode == "publish") {
    catga::Mediator m;
    m.attach(*transport);
    for (int i = 0; i < count; ++i) {
      auto ctx = catga::Context::root();
      ctx.message_id = *catga::MessageId::parse(ob::deposit_id(i));
      if (auto s = m.publish(ob::Deposited{ob::deposit_id(i), i}, ctx); !s) {
        std::cout << "publish failed: " << s.error().message << std::endl;
        return 2;
      }
    }
    std::cout << "published " << count << ": stored_locally=" << transport->stored_locally()
              << " pending=" << transport->pending() << std::endl;
    while (true) pause();  // the test SIGKILLs us here
  }
  const auto before = transport->pending();
  if (!transport->drain(120s)) {
    std::cout << "not drained: " << transport->pending() << " left" << std::endl;
    return 3;
  }
  std::cout << "drained " << before << " relayed " << transport->relayed() << std::endl;
  transport->stop();
  return 0;
} catch (const std::exception& e) {
  std::cout << "outbox_publisher: " << e.what() << std::endl;
  return 2;
}
