#include "raw_nats.hpp"

#include <stdexcept>

namespace catga::test {

void check(natsStatus s, const std::string& what) {
  if (s == NATS_OK) return;
  const char* last = nats_GetLastError(nullptr);
  throw std::runtime_error(what + ": " + natsStatus_GetText(s) + (last != nullptr ? std::string(" / ") + last : ""));
}

RawNats::RawNats(const std::string& url) {
  natsOptions* opts = nullptr;
  check(natsOptions_Create(&opts), "natsOptions_Create");
  natsStatus s = natsOptions_SetURL(opts, url.c_str());
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, 5000);
  if (s == NATS_OK) s = natsConnection_Connect(&nc_, opts);
  natsOptions_Destroy(opts);
  check(s, "connect to " + url);
  s = natsConnection_JetStream(&js_, nc_, nullptr);
  if (s != NATS_OK) {
    natsConnection_Destroy(nc_);
    check(s, "natsConnection_JetStream");
  }
}

RawNats::~RawNats() {
  jsCtx_Destroy(js_);
  natsConnection_Close(nc_);
  natsConnection_Destroy(nc_);
}

}  // namespace catga::test
