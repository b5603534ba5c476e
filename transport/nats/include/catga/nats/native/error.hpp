#pragma once
// to_error: the one place where nats.c failures become catga::Error
// (nats.c level: includes <nats/nats.h>, see catga/nats/native/handle.hpp).

#include <nats/nats.h>

#include <string_view>

#include "catga/result.hpp"

namespace catga::nats::native {

// What the failed call was talking to; decides what "no responders" means.
enum class Surface {
  core,       // plain NATS (publish, subscribe, connect)
  request,    // a remote command/query: no responders = nobody serves it
  jetstream,  // a JetStream API call or publish: no responders = JetStream
              // (or the stream) is not available right now
};

// Turns a status (+ JetStream error code, + the thread's nats.c error text)
// into an Error naming `what` failed. Transient conditions (timeout, no
// server, connection closed or reconnecting, cluster busy) are retryable;
// configuration problems (auth, TLS, invalid arguments) are not.
//   - NATS_TIMEOUT                         → timeout, retryable
//   - no server / disconnected / closed    → unavailable, retryable
//   - NATS_NO_RESPONDERS                   → no_handler (request) or unavailable, retryable (jetstream)
//   - wrong last sequence / last msg id    → conflict
//
//   jsErrCode jerr{};
//   if (natsStatus s = js_PublishMsg(&ack, js, msg, &po, &jerr); s != NATS_OK)
//     return catga::nats::native::to_error(s, jerr, "append to 'orders'", Surface::jetstream);
Error to_error(natsStatus status, jsErrCode js_error, std::string_view what, Surface surface = Surface::core);

// The same with the server's own words for the failure (a refusal read by
// native::Request::js_publish) instead of the thread's last nats.c error.
//
//   auto a = request.js_publish(msg, checks, 2'000);
//   if (a.status != NATS_OK) return to_error(a.status, a.js_error, "append", Surface::jetstream, a.refusal);
Error to_error(natsStatus status, jsErrCode js_error, std::string_view what, Surface surface,
               std::string_view server_text);

inline Error to_error(natsStatus status, std::string_view what, Surface surface = Surface::core) {
  return to_error(status, static_cast<jsErrCode>(0), what, surface);
}

}  // namespace catga::nats::native
