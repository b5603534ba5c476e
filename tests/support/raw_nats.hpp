#pragma once
// RawNats: a plain nats.c connection for tests that check catga against the
// wire (publish or read exactly what another language's client would).

#include <nats/nats.h>

#include <string>

namespace catga::test {

// A connected natsConnection plus a JetStream context; both destroyed with
// the object. Throws std::runtime_error when it cannot connect.
//
//   catga::test::RawNats raw(server.url());
//   natsConnection_PublishString(raw.nc(), "catga.evt.X", "{}");
class RawNats {
 public:
  explicit RawNats(const std::string& url);
  ~RawNats();
  RawNats(const RawNats&) = delete;
  RawNats& operator=(const RawNats&) = delete;

  natsConnection* nc() const noexcept { return nc_; }
  jsCtx* js() const noexcept { return js_; }

 private:
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
};

// Throws std::runtime_error naming `what` when s is not NATS_OK.
void check(natsStatus s, const std::string& what);

}  // namespace catga::test
