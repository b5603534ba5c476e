#include "catga/nats/dead_letters.hpp"

#include <algorithm>

#include "catga/message_id.hpp"
#include "catga/nats/native/connection.hpp"
#include "catga/nats/native/error.hpp"
#include "catga/nats/native/handle.hpp"
#include "catga/nats/native/message.hpp"
#include "catga/wire.hpp"
#include "js_api.hpp"

namespace catga::nats {
namespace {

using detail::api_options;
using native::MsgHandle;
using native::PubAckHandle;
using native::StreamInfoHandle;
using native::Surface;
using native::to_error;

// Headers the dead-letter copy added: a replayed copy is the original again.
bool added_by_dead_lettering(std::string_view name) {
  return name == wire::kError || name == wire::kErrorCode || name == wire::kDeliveries ||
         name == wire::kOriginalSubject || name == wire::kOriginalSeq || name == wire::kGroup;
}

Error stream_error(natsStatus s, jsErrCode jerr, const std::string& stream, std::string_view what) {
  if (jerr == JSStreamNotFoundErr) {
    return make_error(errc::unavailable, "stream '" + stream +
                                             "' does not exist (no catga service has created it on this server yet, "
                                             "or the prefix or stream name is not the deployment's)");
  }
  return to_error(s, jerr, std::string(what) + " (stream '" + stream + "')", Surface::jetstream);
}

std::string type_of(std::string_view subject, std::string_view prefix) {
  const std::string lead = std::string(prefix) + ".dlq.";
  if (subject.substr(0, lead.size()) == lead) return std::string(subject.substr(lead.size()));
  return {};
}

Result<jsStreamInfo*> stream_info(jsCtx* js, std::chrono::milliseconds timeout, const std::string& stream,
                                  const char* subjects_filter, StreamInfoHandle& info) {
  jsOptions o = api_options(timeout);
  o.Stream.Info.SubjectsFilter = subjects_filter;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (natsStatus s = js_GetStreamInfo(info.out(), js, stream.c_str(), &o, &jerr); s != NATS_OK) {
    return stream_error(s, jerr, stream, "stream info");
  }
  return info.get();
}

std::uint64_t messages_on(jsStreamInfo* info) {
  if (info->State.Subjects == nullptr) return 0;
  std::uint64_t n = 0;
  for (int i = 0; i < info->State.Subjects->Count; ++i) n += info->State.Subjects->List[i].Msgs;
  return n;
}

}  // namespace

std::optional<std::string_view> DeadLetter::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return std::string_view(v);
  }
  return std::nullopt;
}

std::string DeadLetter::header_or(std::string_view name, std::string_view fallback) const {
  return std::string(header(name).value_or(fallback));
}

std::string replay_message_id(std::string_view original_id, std::uint64_t dead_letter_seq) {
  const std::string suffix = ".r" + std::to_string(dead_letter_seq);
  if (original_id.empty()) return "replay" + suffix;
  const std::size_t room = MessageId::kMaxText - suffix.size();
  if (original_id.size() > room) original_id.remove_prefix(original_id.size() - room);
  return std::string(original_id) + suffix;
}

DeadLetterQueue::DeadLetterQueue(std::shared_ptr<Connection> connection, JetStreamOptions options,
                                 std::chrono::milliseconds timeout)
    : connection_(std::move(connection)),
      options_(std::move(options)),
      timeout_(timeout),
      stream_(options_.dead_letter_stream()),
      events_(options_.events_stream()) {}

Result<std::optional<DeadLetter>> DeadLetterQueue::get(std::uint64_t sequence) const {
  MsgHandle msg;
  jsOptions o = api_options(timeout_);
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetMsg(msg.out(), native::jetstream_of(*connection_), stream_.c_str(), sequence, &o, &jerr);
  if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) return std::optional<DeadLetter>{};
  if (s != NATS_OK) return stream_error(s, jerr, stream_, "read dead letter #" + std::to_string(sequence));

  DeadLetter dl;
  dl.sequence = sequence;
  dl.subject = std::string(native::subject_of(msg.get()));
  dl.body = std::string(native::body_of(msg.get()));
  dl.time_ns = natsMsg_GetTime(msg.get());
  native::for_each_header(msg.get(), [&](std::string_view k, std::string_view v) {
    dl.headers.emplace_back(std::string(k), std::string(v));
  });
  dl.type = type_of(dl.subject, options_.prefix);
  if (dl.type.empty()) dl.type = dl.header_or(wire::kType);
  return std::optional<DeadLetter>(std::move(dl));
}

Result<std::vector<DeadLetter>> DeadLetterQueue::list(std::string_view type, std::size_t limit) const {
  StreamInfoHandle info;
  auto si = stream_info(native::jetstream_of(*connection_), timeout_, stream_, nullptr, info);
  if (!si) return std::move(si).error();
  std::vector<DeadLetter> out;
  const auto& state = (*si)->State;
  if (state.Msgs == 0) return out;
  for (std::uint64_t seq = state.FirstSeq; seq <= state.LastSeq; ++seq) {
    if (limit != 0 && out.size() >= limit) break;
    auto dl = get(seq);
    if (!dl) return std::move(dl).error();
    if (!*dl) continue;  // removed (replayed) or purged
    if (!type.empty() && (*dl)->type != type) continue;
    out.push_back(std::move(**dl));
  }
  return out;
}

Result<ReplayOutcome> DeadLetterQueue::replay(const DeadLetter& letter, bool keep) const {
  if (auto consumer = letter.header(wire::kEsConsumer)) {
    return make_error(errc::validation,
                      "dead letter #" + std::to_string(letter.sequence) + " is an event-store commit that '" +
                          std::string(*consumer) +
                          "' could not read; replaying would append it to the store again. Deploy an upcaster that "
                          "reads it and rebuild the projection (docs/event-sourcing.md), then purge it");
  }
  ReplayOutcome r;
  r.dead_letter_seq = letter.sequence;
  r.subject = letter.header_or(wire::kOriginalSubject);
  if (r.subject.empty()) {
    if (letter.type.empty()) {
      return make_error(errc::validation, "dead letter #" + std::to_string(letter.sequence) +
                                              " names neither its original subject nor its type");
    }
    r.subject = wire::event_subject(options_.prefix, letter.type);
  }
  // Only back to an events subject of this prefix: a dead letter naming
  // $JS.API.…, _INBOX.… or another application's subject would otherwise be
  // executed with the caller's credentials.
  const std::string event_subjects = options_.prefix + ".evt.";
  if (r.subject.compare(0, event_subjects.size(), event_subjects) != 0 || !wire::check_subject(r.subject, "subject")) {
    return make_error(errc::validation, "dead letter #" + std::to_string(letter.sequence) + " names '" + r.subject +
                                            "' as its original subject, which is not an event subject under '" +
                                            event_subjects + "'; not replayed");
  }
  r.original_id = letter.header_or(wire::kOriginalMsgId);
  r.message_id = replay_message_id(r.original_id, letter.sequence);

  MsgHandle msg;
  if (natsStatus s = natsMsg_Create(msg.out(), r.subject.c_str(), nullptr, letter.body.data(),
                                    static_cast<int>(letter.body.size()));
      s != NATS_OK) {
    return to_error(s, "create replay message for '" + r.subject + "'");
  }
  // Stored headers go back as they were (no header_safe: they passed a
  // server once), every value of a repeated header included.
  Status hs;
  auto put = [&](std::string_view k, std::string_view v, bool replace) {
    if (!hs) return;
    const std::string key(k), value(v);
    natsStatus s = replace ? natsMsgHeader_Set(msg.get(), key.c_str(), value.c_str())
                           : natsMsgHeader_Add(msg.get(), key.c_str(), value.c_str());
    if (s != NATS_OK) hs = to_error(s, "header '" + key + "'");
  };
  for (const auto& [k, v] : letter.headers) {
    if (added_by_dead_lettering(k) || k == wire::kMsgId || k == wire::kReplayed) continue;
    put(k, v, false);
  }
  put(wire::kMsgId, r.message_id, true);
  put(wire::kReplayed, std::to_string(letter.sequence), true);
  if (!hs) return std::move(hs).error();

  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = std::max<std::int64_t>(timeout_.count(), 1);
  po.ExpectStream = events_.c_str();  // never into another stream that happens to match
  PubAckHandle ack;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (natsStatus s = js_PublishMsg(ack.out(), native::jetstream_of(*connection_), msg.get(), &po, &jerr);
      s != NATS_OK) {
    return stream_error(s, jerr, events_, "replay dead letter #" + std::to_string(letter.sequence) + " to '" +
                                              r.subject + "'");
  }
  r.stream_seq = ack.get()->Sequence;
  r.duplicate = ack.get()->Duplicate;
  if (!keep) {
    auto removed = remove(letter.sequence);
    if (!removed) {
      Error e = std::move(removed).error();
      e.message = "replayed #" + std::to_string(letter.sequence) +
                  ", but could not delete it from the dead letters: " + e.message;
      return e;
    }
    r.removed = *removed;
  }
  return r;
}

Result<bool> DeadLetterQueue::remove(std::uint64_t sequence) const {
  jsOptions o = api_options(timeout_);
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_DeleteMsg(native::jetstream_of(*connection_), stream_.c_str(), sequence, &o, &jerr);
  if (s == NATS_OK) return true;
  if (jerr == JSNoMessageFoundErr || jerr == JSSequenceNotFoundErr) return false;
  return stream_error(s, jerr, stream_, "remove dead letter #" + std::to_string(sequence));
}

Result<std::uint64_t> DeadLetterQueue::purge(std::string_view type) const {
  const std::string filter = type.empty() ? options_.prefix + ".dlq.>" : wire::dead_letter_subject(options_.prefix, type);
  StreamInfoHandle info;
  auto before = stream_info(native::jetstream_of(*connection_), timeout_, stream_, filter.c_str(), info);
  if (!before) return std::move(before).error();
  const std::uint64_t count = type.empty() ? (*before)->State.Msgs : messages_on(*before);
  jsOptions o = api_options(timeout_);
  if (!type.empty()) o.Stream.Purge.Subject = filter.c_str();
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (natsStatus s = js_PurgeStream(native::jetstream_of(*connection_), stream_.c_str(), &o, &jerr); s != NATS_OK) {
    return stream_error(s, jerr, stream_, "purge");
  }
  return count;
}

}  // namespace catga::nats
