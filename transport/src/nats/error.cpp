#include "error.hpp"

#include <string>

namespace catga::nats::detail {
namespace {

struct Mapping {
  std::string_view code;
  bool retryable;
};

Mapping map_js_error(jsErrCode e) {
  switch (e) {
    case JSStreamWrongLastSequenceErr:
    case JSStreamWrongLastMsgIDErr:
    case JSStreamSequenceNotMatchErr:
      return {errc::conflict, false};
    case JSClusterNotAvailErr:
    case JSClusterNotLeaderErr:
    case JSClusterNoPeersErr:
    case JSClusterIncompleteErr:
    case JSInsufficientResourcesErr:
    case JSStreamOfflineErr:
    case JSConsumerOfflineErr:
    case JSStorageResourcesExceededErr:
    case JSMemoryResourcesExceededErr:
    case JSStreamStoreFailedErr:
    case JSRaftGeneralErr:
    case JSStreamNotFoundErr:
    case JSConsumerNotFoundErr:
    case JSNotEnabledErr:
    case JSNotEnabledForAccountErr:
      return {errc::unavailable, true};
    case JSStreamMessageExceedsMaximumErr:
    case JSBadRequestErr:
    case JSInvalidJSONErr:
    case JSStreamInvalidConfig:
      return {errc::validation, false};
    default:
      return {errc::internal, false};
  }
}

Mapping map_status(natsStatus s, Surface surface) {
  switch (s) {
    case NATS_TIMEOUT:
      return {errc::timeout, true};
    case NATS_NO_RESPONDERS:
      if (surface == Surface::request) return {errc::no_handler, false};
      return {errc::unavailable, true};
    case NATS_NO_SERVER:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_IO_ERROR:
    case NATS_STALE_CONNECTION:
    case NATS_NOT_YET_CONNECTED:
    case NATS_DRAINING:
    case NATS_SLOW_CONSUMER:
    case NATS_MISSED_HEARTBEAT:
    case NATS_NO_MEMORY:
      return {errc::unavailable, true};
    case NATS_CONNECTION_AUTH_FAILED:
    case NATS_NOT_PERMITTED:
    case NATS_SECURE_CONNECTION_WANTED:
    case NATS_SECURE_CONNECTION_REQUIRED:
    case NATS_SSL_ERROR:
    case NATS_NO_SERVER_SUPPORT:
      return {errc::unavailable, false};
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
    case NATS_INVALID_QUEUE_NAME:
    case NATS_MAX_PAYLOAD:
    case NATS_ADDRESS_MISSING:
    case NATS_INVALID_TIMEOUT:
      return {errc::validation, false};
    case NATS_NOT_FOUND:
      return {errc::unavailable, true};
    default:
      return {errc::internal, false};
  }
}

}  // namespace

Error to_error(natsStatus status, jsErrCode js_error, std::string_view what, Surface surface) {
  Mapping m = js_error != 0 ? map_js_error(js_error) : map_status(status, surface);
  std::string message(what);
  message.append(": ").append(natsStatus_GetText(status));
  if (js_error != 0) message.append(" (JetStream error ").append(std::to_string(static_cast<int>(js_error))).append(")");
  // The thread's last error often holds the server's own words ("wrong last
  // sequence: 7", "stream name already in use"); only trust it for this status.
  natsStatus last_status = NATS_OK;
  const char* last = nats_GetLastError(&last_status);
  if (last != nullptr && *last != '\0' && last_status == status) {
    std::string_view text(last);
    if (text != natsStatus_GetText(status)) message.append(": ").append(text);
  }
  return Error{std::string(m.code), std::move(message), m.retryable};
}

}  // namespace catga::nats::detail
