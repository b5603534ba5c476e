#include "provisioning.hpp"

#include <algorithm>
#include <cstdio>
#include <set>

#include "error.hpp"
#include "handle.hpp"
#include "js_api.hpp"
#include "log.hpp"
#include "transport_state.hpp"

namespace catga::nats::detail {
namespace {

std::string_view storage_name(jsStorageType t) { return t == js_MemoryStorage ? "memory" : "file"; }
std::string_view retention_name(jsRetentionPolicy p) {
  switch (p) {
    case js_LimitsPolicy: return "limits";
    case js_InterestPolicy: return "interest";
    case js_WorkQueuePolicy: return "workqueue";
  }
  return "?";
}

Error mismatch(const std::string& stream, std::string_view field, std::string_view existing, std::string_view wanted) {
  return make_error(errc::conflict, "stream '" + stream + "' exists with " + std::string(field) + " = " +
                                        std::string(existing) + ", but the configuration asks for " +
                                        std::string(wanted) +
                                        "; catga does not change an existing stream: align the configuration or "
                                        "migrate the stream");
}

std::string join(const std::set<std::string>& s) {
  std::string out = "[";
  for (const auto& x : s) out += (out.size() > 1 ? "," : "") + x;
  return out + "]";
}

std::string ns_text(std::int64_t ns) { return std::to_string(ns) + " ns"; }

Status compare(const std::string& name, const jsStreamConfig& have, const std::vector<std::string>& subjects,
               const StreamOptions& want) {
  std::set<std::string> have_subjects;
  for (int i = 0; i < have.SubjectsLen; ++i) have_subjects.insert(have.Subjects[i]);
  std::set<std::string> want_subjects(subjects.begin(), subjects.end());
  if (have_subjects != want_subjects) return mismatch(name, "subjects", join(have_subjects), join(want_subjects));
  if (have.Retention != js_LimitsPolicy) return mismatch(name, "retention", retention_name(have.Retention), "limits");
  const auto want_storage = want.storage == StorageType::memory ? js_MemoryStorage : js_FileStorage;
  if (have.Storage != want_storage) return mismatch(name, "storage", storage_name(have.Storage), storage_name(want_storage));
  const std::int64_t want_replicas = std::max(want.replicas, 1);
  if (std::max<std::int64_t>(have.Replicas, 1) != want_replicas) {
    return mismatch(name, "replicas", std::to_string(have.Replicas), std::to_string(want_replicas));
  }
  if (have.MaxAge != want.max_age.count()) return mismatch(name, "max_age", ns_text(have.MaxAge), ns_text(want.max_age.count()));
  if (want.duplicate_window.count() > 0 && have.Duplicates != want.duplicate_window.count()) {
    return mismatch(name, "duplicate_window", ns_text(have.Duplicates), ns_text(want.duplicate_window.count()));
  }
  if (have.MaxBytes != want.max_bytes) {
    return mismatch(name, "max_bytes", std::to_string(have.MaxBytes), std::to_string(want.max_bytes));
  }
  if (have.MaxMsgs != want.max_msgs) return mismatch(name, "max_msgs", std::to_string(have.MaxMsgs), std::to_string(want.max_msgs));
  return {};
}

}  // namespace

Status ensure_stream(jsCtx* js, const std::string& name, const std::vector<std::string>& subjects,
                     const StreamOptions& options, std::chrono::milliseconds wait) {
  jsOptions jo = api_options(wait);
  for (int round = 0; round < 3; ++round) {
    StreamInfoHandle info;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_GetStreamInfo(info.out(), js, name.c_str(), &jo, &jerr);
    if (s == NATS_OK) return compare(name, *info.get()->Config, subjects, options);
    if (s != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr) {
      return to_error(s, jerr, "look up stream '" + name + "'", Surface::jetstream);
    }

    std::vector<const char*> subject_ptrs;
    for (const auto& x : subjects) subject_ptrs.push_back(x.c_str());
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = name.c_str();
    cfg.Subjects = subject_ptrs.data();
    cfg.SubjectsLen = static_cast<int>(subject_ptrs.size());
    cfg.Retention = js_LimitsPolicy;
    cfg.Storage = options.storage == StorageType::memory ? js_MemoryStorage : js_FileStorage;
    cfg.Replicas = std::max(options.replicas, 1);
    cfg.MaxAge = options.max_age.count();
    cfg.Duplicates = options.duplicate_window.count();
    cfg.MaxBytes = options.max_bytes;
    cfg.MaxMsgs = options.max_msgs;
    cfg.Discard = js_DiscardOld;
    jerr = static_cast<jsErrCode>(0);
    s = js_AddStream(info.out(), js, &cfg, &jo, &jerr);
    if (s == NATS_OK) {
      log().info("catga.nats created stream '{}' ({} storage)", name, options.storage == StorageType::memory ? "memory" : "file");
      return {};
    }
    // Another process created it in between (with our config or not): look
    // again. A create racing another instance's create of this same stream
    // is answered "subjects overlap" (10065) rather than "name in use":
    // only when the stream is still not there is it another stream's.
    if (jerr == JSStreamNameExistErr) continue;
    if (jerr == JSStreamSubjectOverlapErr && round < 2) continue;
    if (jerr == JSStreamSubjectOverlapErr) {
      return make_error(errc::conflict, "cannot create stream '" + name + "': its subjects overlap another stream's (" +
                                            to_error(s, jerr, "add stream").message + ")");
    }
    return to_error(s, jerr, "create stream '" + name + "'", Surface::jetstream);
  }
  return make_error(errc::conflict, "stream '" + name + "' keeps changing while being provisioned", true);
}

Status ensure_streams(jsCtx* js, const JetStreamOptions& options, std::chrono::milliseconds wait) {
  if (auto s = ensure_stream(js, options.events_stream(), {options.prefix + ".evt.>"}, options.events, wait); !s) return s;
  return ensure_stream(js, options.dead_letter_stream(), {options.prefix + ".dlq.>"}, options.dead_letters, wait);
}

std::string consumer_name(std::string_view group, std::string_view type) {
  std::string raw;
  raw.append(group).append("_").append(type);
  std::string out;
  bool changed = false;
  for (char c : raw) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    out.push_back(ok ? c : '_');
    changed = changed || !ok;
  }
  if (changed) {
    std::uint32_t h = 2166136261u;  // FNV-1a of the original, so "a.b" and "a_b" differ
    for (unsigned char c : raw) h = (h ^ c) * 16777619u;
    char buf[10];
    std::snprintf(buf, sizeof buf, "_%08x", h);
    out += buf;
  }
  return out;
}

Status ensure_consumer(jsCtx* js, const ConsumerSpec& spec, std::chrono::milliseconds wait) {
  jsOptions jo = api_options(wait);
  for (int round = 0; round < 3; ++round) {
    ConsumerInfoHandle info;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_GetConsumerInfo(info.out(), js, spec.stream.c_str(), spec.name.c_str(), &jo, &jerr);
    if (s == NATS_OK) {
      const jsConsumerConfig& c = *info.get()->Config;
      const std::string where = "consumer '" + spec.name + "' on stream '" + spec.stream + "'";
      if (c.DeliverSubject != nullptr && *c.DeliverSubject != '\0') {
        return make_error(errc::conflict, where + " exists as a push consumer; catga needs a pull consumer");
      }
      if (c.AckPolicy != js_AckExplicit) {
        return make_error(errc::conflict, where + " exists without explicit acks; catga needs ack policy explicit");
      }
      const std::string filter = c.FilterSubject != nullptr ? c.FilterSubject : "";
      if (filter != spec.filter_subject) {
        return make_error(errc::conflict, where + " exists with filter subject '" + filter + "', expected '" +
                                              spec.filter_subject + "'");
      }
      const auto ack_wait_ns = std::chrono::nanoseconds(spec.options.ack_wait).count();
      if (c.AckWait != ack_wait_ns || c.MaxAckPending != spec.options.max_ack_pending) {
        log().warn("catga.nats {} keeps its ack_wait = {} ns, max_ack_pending = {} (configured {} ns, {})", where,
                   c.AckWait, c.MaxAckPending, ack_wait_ns, spec.options.max_ack_pending);
      }
      return {};
    }
    if (s != NATS_NOT_FOUND && jerr != JSConsumerNotFoundErr) {
      return to_error(s, jerr, "look up consumer '" + spec.name + "'", Surface::jetstream);
    }

    jsConsumerConfig cfg;
    jsConsumerConfig_Init(&cfg);
    cfg.Durable = spec.name.c_str();
    cfg.Description = spec.description.empty() ? nullptr : spec.description.c_str();
    cfg.FilterSubject = spec.filter_subject.c_str();
    cfg.AckPolicy = js_AckExplicit;
    cfg.AckWait = std::chrono::nanoseconds(spec.options.ack_wait).count();
    // Unlimited at the server: the retry policy is enforced by the consumer
    // (dead letter after max_deliver), so a nak'ed message after a failed
    // dead-letter copy is never silently dropped by the server.
    cfg.MaxDeliver = -1;
    cfg.MaxAckPending = spec.options.max_ack_pending;
    cfg.DeliverPolicy = spec.options.start == StartPosition::new_messages ? js_DeliverNew : js_DeliverAll;
    if (spec.start_sequence > 0) {
      cfg.DeliverPolicy = js_DeliverByStartSequence;
      cfg.OptStartSeq = spec.start_sequence;
    }
    cfg.ReplayPolicy = js_ReplayInstant;
    jerr = static_cast<jsErrCode>(0);
    s = js_AddConsumer(info.out(), js, spec.stream.c_str(), &cfg, &jo, &jerr);
    if (s == NATS_OK) {
      log().info("catga.nats created consumer '{}' on '{}' for '{}'", spec.name, spec.stream, spec.filter_subject);
      return {};
    }
    if (jerr == JSConsumerNameExistErr || jerr == JSConsumerExistingActiveErr ||
        jerr == JSConsumerReplacementWithDifferentNameErr) {
      continue;  // created concurrently: check it
    }
    return to_error(s, jerr, "create consumer '" + spec.name + "'", Surface::jetstream);
  }
  return make_error(errc::conflict, "consumer '" + spec.name + "' keeps changing while being provisioned", true);
}

Status TransportState::reprovision() {
  if (!options.provision) return {};
  std::lock_guard lock(provision_mu_);
  const auto now = std::chrono::steady_clock::now();
  if (now - last_provision_ < std::chrono::milliseconds(500)) return {};
  last_provision_ = now;
  auto s = ensure_streams(js(), options, std::chrono::seconds(2));
  if (!s) log().debug("catga.nats re-provisioning streams failed: {}", s.error().message);
  return s;
}

}  // namespace catga::nats::detail
