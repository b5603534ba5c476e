#include "dead_letters.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>

#include "catga/message_id.hpp"
#include "catga/wire.hpp"
#include "table.hpp"
#include "error.hpp"
#include "handle.hpp"
#include "message.hpp"

namespace catga::cli {
namespace {

using catga::nats::detail::MsgHandle;
using catga::nats::detail::PubAckHandle;
using catga::nats::detail::StreamInfoHandle;
using catga::nats::detail::Surface;
using catga::nats::detail::to_error;

// Headers the dead-letter copy added: a replayed copy is the original again.
bool added_by_dead_lettering(std::string_view name) {
  return name == wire::kError || name == wire::kErrorCode || name == wire::kDeliveries ||
         name == wire::kOriginalSubject || name == wire::kOriginalSeq || name == wire::kGroup;
}

Error stream_error(natsStatus s, jsErrCode jerr, const std::string& stream, std::string_view what) {
  if (jerr == JSStreamNotFoundErr) {
    return make_error(errc::unavailable, "stream '" + stream +
                                             "' does not exist (no catga service has created it on this server yet, "
                                             "or --prefix / --dlq-stream / --events-stream name another one)");
  }
  return to_error(s, jerr, std::string(what) + " (stream '" + stream + "')", Surface::jetstream);
}

std::string type_of(std::string_view subject, std::string_view prefix) {
  const std::string lead = std::string(prefix) + ".dlq.";
  if (subject.substr(0, lead.size()) == lead) return std::string(subject.substr(lead.size()));
  return {};
}

Result<jsStreamInfo*> stream_info(const Session& session, const std::string& stream, const char* subjects_filter,
                                  StreamInfoHandle& info) {
  jsOptions o = session.js_options();
  o.Stream.Info.SubjectsFilter = subjects_filter;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (natsStatus s = js_GetStreamInfo(info.out(), session.js(), stream.c_str(), &o, &jerr); s != NATS_OK) {
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

nlohmann::json DeadLetter::summary_json() const {
  // A header that is a plain decimal number is shown as one; anything else
  // ("-1", "12abc", a number past 2^64) as the text it is, never as a
  // wrapped or truncated number.
  auto number = [&](std::string_view h) -> nlohmann::json {
    const auto v = header_or(h);
    if (v.empty()) return nullptr;
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc{} || end != v.data() + v.size()) return v;
    return n;
  };
  return {{"seq", sequence},
          {"subject", subject},
          {"type", type},
          {"time", format_time(time_ns)},
          {"group", header_or(wire::kGroup)},
          {"deliveries", number(wire::kDeliveries)},
          {"error_code", header_or(wire::kErrorCode)},
          {"error", header_or(wire::kError)},
          {"original_subject", header_or(wire::kOriginalSubject)},
          {"original_seq", number(wire::kOriginalSeq)},
          {"original_msg_id", header_or(wire::kOriginalMsgId)}};
}

nlohmann::json DeadLetter::full_json() const {
  auto j = summary_json();
  nlohmann::json hs = nlohmann::json::object();
  for (const auto& [k, v] : headers) hs[k] = v;  // a repeated header keeps its last value
  j["headers"] = std::move(hs);
  // A body that is not JSON (the usual reason for a `malformed` dead letter)
  // is shown as text instead.
  auto parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    j["body"] = nullptr;
    j["body_text"] = body;
  } else {
    j["body"] = std::move(parsed);
  }
  return j;
}

std::string replay_message_id(std::string_view original_id, std::uint64_t dead_letter_seq) {
  const std::string suffix = ".r" + std::to_string(dead_letter_seq);
  if (original_id.empty()) return "replay" + suffix;
  const std::size_t room = catga::MessageId::kMaxText - suffix.size();
  if (original_id.size() > room) original_id.remove_prefix(original_id.size() - room);
  return std::string(original_id) + suffix;
}

Result<std::optional<DeadLetter>> read_dead_letter(const Session& session, std::uint64_t sequence) {
  const std::string stream = session.options().dead_letters();
  MsgHandle msg;
  jsOptions o = session.js_options();
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetMsg(msg.out(), session.js(), stream.c_str(), sequence, &o, &jerr);
  if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) return std::optional<DeadLetter>{};
  if (s != NATS_OK) return stream_error(s, jerr, stream, "read dead letter #" + std::to_string(sequence));

  DeadLetter dl;
  dl.sequence = sequence;
  dl.subject = std::string(catga::nats::detail::subject_of(msg.get()));
  dl.body = std::string(catga::nats::detail::body_of(msg.get()));
  dl.time_ns = natsMsg_GetTime(msg.get());
  catga::nats::detail::for_each_header(msg.get(), [&](std::string_view k, std::string_view v) {
    dl.headers.emplace_back(std::string(k), std::string(v));
  });
  dl.type = type_of(dl.subject, session.options().prefix);
  if (dl.type.empty()) dl.type = dl.header_or(wire::kType);
  return std::optional<DeadLetter>(std::move(dl));
}

Result<std::vector<DeadLetter>> list_dead_letters(const Session& session, std::string_view type, std::size_t limit) {
  const std::string stream = session.options().dead_letters();
  StreamInfoHandle info;
  auto si = stream_info(session, stream, nullptr, info);
  if (!si) return std::move(si).error();
  std::vector<DeadLetter> out;
  const auto& state = (*si)->State;
  if (state.Msgs == 0) return out;
  for (std::uint64_t seq = state.FirstSeq; seq <= state.LastSeq; ++seq) {
    if (limit != 0 && out.size() >= limit) break;
    auto dl = read_dead_letter(session, seq);
    if (!dl) return std::move(dl).error();
    if (!*dl) continue;  // deleted (replayed) or purged
    if (!type.empty() && (*dl)->type != type) continue;
    out.push_back(std::move(**dl));
  }
  return out;
}

Result<ReplayOutcome> replay_dead_letter(const Session& session, const DeadLetter& letter, bool keep) {
  const auto& g = session.options();
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
    r.subject = wire::event_subject(g.prefix, letter.type);
  }
  // Only back to an events subject of this prefix: a dead letter naming
  // $JS.API.…, _INBOX.… or another application's subject would otherwise be
  // executed with the operator's credentials.
  const std::string event_subjects = g.prefix + ".evt.";
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

  const std::string events = g.events();
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = g.timeout_ms;
  po.ExpectStream = events.c_str();  // never into another stream that happens to match
  PubAckHandle ack;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (natsStatus s = js_PublishMsg(ack.out(), session.js(), msg.get(), &po, &jerr); s != NATS_OK) {
    return stream_error(s, jerr, events, "replay dead letter #" + std::to_string(letter.sequence) + " to '" +
                                             r.subject + "'");
  }
  r.stream_seq = ack.get()->Sequence;
  r.duplicate = ack.get()->Duplicate;
  if (!keep) {
    const std::string stream = g.dead_letters();
    jsOptions o = session.js_options();
    jerr = static_cast<jsErrCode>(0);
    const natsStatus s = js_DeleteMsg(session.js(), stream.c_str(), letter.sequence, &o, &jerr);
    if (s != NATS_OK && jerr != JSNoMessageFoundErr) {
      return stream_error(s, jerr, stream, "replayed #" + std::to_string(letter.sequence) +
                                               ", but could not delete it from the dead letters");
    }
    r.removed = s == NATS_OK;
  }
  return r;
}

Result<std::uint64_t> purge_dead_letters(const Session& session, std::string_view type) {
  const std::string stream = session.options().dead_letters();
  const std::string filter =
      type.empty() ? session.options().prefix + ".dlq.>" : wire::dead_letter_subject(session.options().prefix, type);
  StreamInfoHandle info;
  auto before = stream_info(session, stream, filter.c_str(), info);
  if (!before) return std::move(before).error();
  const std::uint64_t count = type.empty() ? (*before)->State.Msgs : messages_on(*before);
  jsOptions o = session.js_options();
  if (!type.empty()) o.Stream.Purge.Subject = filter.c_str();
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (natsStatus s = js_PurgeStream(session.js(), stream.c_str(), &o, &jerr); s != NATS_OK) {
    return stream_error(s, jerr, stream, "purge");
  }
  return count;
}

}  // namespace catga::cli
