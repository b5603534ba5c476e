#include "commit_dead_letter.hpp"

#include <algorithm>

#include "catga/nats/native/error.hpp"
#include "catga/nats/native/message.hpp"
#include "catga/wire.hpp"
#include "event_store_impl.hpp"

namespace catga::eventsourcing::detail {

using nats::native::Surface;
using nats::native::to_error;

std::string commit_dead_letter_subject(std::string_view prefix, std::string_view store_subject) {
  // <prefix>.es.<type>.<id>: the aggregate type is the token after ".es.".
  std::string_view type = "unknown";
  const std::string lead = std::string(prefix) + ".es.";
  if (store_subject.substr(0, lead.size()) == lead) {
    auto rest = store_subject.substr(lead.size());
    type = rest.substr(0, rest.find('.'));
    if (type.empty()) type = "unknown";
  }
  return wire::dead_letter_subject(prefix, "es." + std::string(type));
}

Status dead_letter_commit(EventStore& store, natsMsg* msg, std::string_view consumer, std::uint64_t stream_seq,
                          std::uint64_t deliveries, const Error& error) {
  auto& impl = store.impl();
  const auto original_subject = nats::native::subject_of(msg);
  const std::string subject = commit_dead_letter_subject(impl.options.prefix, original_subject);
  const auto body = nats::native::body_of(msg);
  nats::native::MsgHandle copy;
  if (natsStatus s = natsMsg_Create(copy.out(), subject.c_str(), nullptr, body.data(), static_cast<int>(body.size()));
      s != NATS_OK) {
    return to_error(s, "create dead-letter copy of commit #" + std::to_string(stream_seq));
  }
  Status hs;
  auto set = [&](std::string_view k, std::string_view v) {
    if (hs) hs = nats::native::set_header(copy.get(), k, nats::native::header_safe(v));
  };
  // The store's own headers (stream key, version) stay; the commit's id goes
  // to Catga-Original-Msg-Id and no Nats-Expected-* condition is carried over
  // (the dead-letter stream would apply it).
  nats::native::for_each_header(msg, [&](std::string_view k, std::string_view v) {
    if (k == wire::kMsgId) {
      set(wire::kOriginalMsgId, v);
    } else if (k.substr(0, 14) != "Nats-Expected-") {
      set(k, v);
    }
  });
  set(wire::kMsgId, impl.stream_name + ":" + std::to_string(stream_seq) + ":" + std::string(consumer));
  set(wire::kError, error.message);
  set(wire::kErrorCode, error.code);
  set(wire::kDeliveries, std::to_string(std::max<std::uint64_t>(deliveries, 1)));
  set(wire::kOriginalSubject, original_subject);
  set(wire::kOriginalSeq, std::to_string(stream_seq));
  set(wire::kGroup, consumer);
  set(wire::kEsConsumer, consumer);
  if (!hs) return hs;
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = std::max<std::int64_t>(impl.options.timeout.count(), 1);
  nats::native::PubAckHandle ack;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_PublishMsg(ack.out(), impl.jet(), copy.get(), &po, &jerr);
  if (s != NATS_OK) return to_error(s, jerr, "store dead letter on '" + subject + "'", Surface::jetstream);
  return {};
}

}  // namespace catga::eventsourcing::detail
