#include "catga/nats/native/error.hpp"

#include <string>

namespace catga::nats::native {
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

// nats.c prefixes its thread-local error text with "(conn.c:1234): ";
// that locates nats.c's source, not the user's problem.
std::string_view strip_source_location(std::string_view text) noexcept {
  if (text.empty() || text.front() != '(') return text;
  const auto close = text.find("): ");
  if (close == std::string_view::npos) return text;
  const auto inner = text.substr(1, close - 1);
  const auto colon = inner.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == inner.size()) return text;
  for (char c : inner.substr(colon + 1)) {
    if (c < '0' || c > '9') return text;
  }
  return text.substr(close + 3);
}

bool contains_nocase(std::string_view haystack, std::string_view needle) noexcept {
  if (needle.empty()) return true;
  if (needle.size() > haystack.size()) return false;
  auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
  for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    std::size_t j = 0;
    while (j < needle.size() && lower(haystack[i + j]) == lower(needle[j])) ++j;
    if (j == needle.size()) return true;
  }
  return false;
}

// A credentials file that cannot be used is a configuration mistake, not an
// outage: nats.c reports it with a generic status and this text.
bool is_credentials_problem(std::string_view text) noexcept {
  return contains_nocase(text, "seed") || contains_nocase(text, "user jwt") || contains_nocase(text, "creds") ||
         contains_nocase(text, "credentials");
}

}  // namespace

Error to_error(natsStatus status, jsErrCode js_error, std::string_view what, Surface surface) {
  // The thread's last error often holds the server's own words ("wrong last
  // sequence: 7", "stream name already in use"); only trust it for this status.
  natsStatus last_status = NATS_OK;
  const char* last = nats_GetLastError(&last_status);
  std::string_view detail;
  if (last != nullptr && *last != '\0' && last_status == status) detail = strip_source_location(last);
  return to_error(status, js_error, what, surface, detail);
}

Error to_error(natsStatus status, jsErrCode js_error, std::string_view what, Surface surface,
               std::string_view detail) {
  Mapping m = js_error != 0 ? map_js_error(js_error) : map_status(status, surface);
  const std::string_view status_text = natsStatus_GetText(status);

  std::string message(what);
  message.append(": ");
  // The detail usually repeats the status text ("Authorization Violation"):
  // say it once.
  if (detail.empty()) {
    message.append(status_text);
  } else if (status == NATS_ERR || contains_nocase(detail, status_text)) {
    // NATS_ERR's text is just "Error".
    message.append(detail);
  } else {
    message.append(status_text).append(": ").append(detail);
  }
  if (js_error != 0) message.append(" (JetStream error ").append(std::to_string(static_cast<int>(js_error))).append(")");
  if (js_error == 0 && status != NATS_CONNECTION_AUTH_FAILED && status != NATS_NOT_PERMITTED &&
      is_credentials_problem(detail)) {
    m = {errc::validation, false};
  }
  return Error{std::string(m.code), std::move(message), m.retryable};
}

}  // namespace catga::nats::native
