#include "catga/nats/streams.hpp"

#include <algorithm>

#include "catga/nats/native/connection.hpp"
#include "catga/nats/native/error.hpp"
#include "js_api.hpp"
#include "provisioning.hpp"

namespace catga::nats {
namespace {

std::string text(const char* s) { return s != nullptr ? std::string(s) : std::string(); }

}  // namespace

Result<std::vector<StreamInfo>> list_streams(const Connection& connection, std::chrono::milliseconds wait) {
  detail::StreamInfoListHandle list;
  jsOptions o = detail::api_options(wait);
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_Streams(list.out(), native::jetstream_of(connection), &o, &jerr);
  // An account without streams answers "not found".
  if (s != NATS_OK && s != NATS_NOT_FOUND) return native::to_error(s, jerr, "list streams", native::Surface::jetstream);
  const jsStreamInfoList* raw = list.get();

  std::vector<StreamInfo> out;
  const int count = raw != nullptr ? raw->Count : 0;
  out.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    const jsStreamInfo* si = raw->List[i];
    const jsStreamConfig* c = si->Config;
    StreamInfo info;
    info.name = text(c->Name);
    for (int k = 0; k < c->SubjectsLen; ++k) info.subjects.push_back(text(c->Subjects[k]));
    info.storage = c->Storage == js_MemoryStorage ? StorageType::memory : StorageType::file;
    info.replicas = static_cast<int>(c->Replicas);
    info.duplicate_window = std::chrono::nanoseconds(c->Duplicates);
    info.max_age = std::chrono::nanoseconds(c->MaxAge);
    info.messages = si->State.Msgs;
    info.bytes = si->State.Bytes;
    info.first_seq = si->State.FirstSeq;
    info.last_seq = si->State.LastSeq;
    info.consumers = si->State.Consumers;
    out.push_back(std::move(info));
  }
  return out;
}

Result<std::vector<ConsumerInfo>> list_consumers(const Connection& connection, const std::string& stream,
                                                 std::chrono::milliseconds wait) {
  detail::ConsumerInfoListHandle list;
  jsOptions o = detail::api_options(wait);
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_Consumers(list.out(), native::jetstream_of(connection), stream.c_str(), &o, &jerr);
  if (jerr == JSStreamNotFoundErr) return make_error(errc::unavailable, "stream '" + stream + "' does not exist");
  if (s != NATS_OK && s != NATS_NOT_FOUND) {
    return native::to_error(s, jerr, "list consumers of '" + stream + "'", native::Surface::jetstream);
  }
  const jsConsumerInfoList* raw = list.get();

  std::vector<ConsumerInfo> out;
  const int count = raw != nullptr ? raw->Count : 0;
  out.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    const jsConsumerInfo* ci = raw->List[i];
    ConsumerInfo info;
    info.stream = stream;
    info.name = text(ci->Name);
    if (ci->Config != nullptr) {
      info.description = text(ci->Config->Description);
      info.filter_subject = text(ci->Config->FilterSubject);
    }
    info.pending = ci->NumPending;
    info.ack_pending = ci->NumAckPending;
    info.redelivered = ci->NumRedelivered;
    info.waiting = ci->NumWaiting;
    info.delivered_stream_seq = ci->Delivered.Stream;
    info.ack_floor_stream_seq = ci->AckFloor.Stream;
    out.push_back(std::move(info));
  }
  return out;
}

Status ensure_stream(const Connection& connection, const std::string& name, const std::vector<std::string>& subjects,
                     const StreamOptions& options, std::chrono::milliseconds wait) {
  return detail::ensure_stream(native::jetstream_of(connection), name, subjects, options, wait);
}

}  // namespace catga::nats
