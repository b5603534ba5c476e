#pragma once
// Reads stored messages back with raw nats.c (what an operator tool sees).

#include <nats/nats.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "raw_nats.hpp"

namespace nt {

struct Stored {
  std::uint64_t sequence = 0;
  std::string subject;
  std::string body;
  std::map<std::string, std::string> headers;

  std::string header(const std::string& k) const {
    auto it = headers.find(k);
    return it == headers.end() ? std::string("<absent>") : it->second;
  }
  bool has(const std::string& k) const { return headers.count(k) != 0; }
};

inline std::map<std::string, std::string> headers_of(natsMsg* m) {
  std::map<std::string, std::string> out;
  const char** keys = nullptr;
  int n = 0;
  if (natsMsgHeader_Keys(m, &keys, &n) == NATS_OK) {
    for (int i = 0; i < n; ++i) {
      const char* v = nullptr;
      if (natsMsgHeader_Get(m, keys[i], &v) == NATS_OK) out[keys[i]] = v;
    }
    std::free(static_cast<void*>(keys));
  }
  return out;
}

// Every message of `stream` (by sequence, skipping deleted ones).
inline std::vector<Stored> read_stream(catga::test::RawNats& raw, const std::string& stream) {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr{};
  catga::test::check(js_GetStreamInfo(&si, raw.js(), stream.c_str(), nullptr, &jerr), "stream info " + stream);
  const auto first = si->State.FirstSeq, last = si->State.LastSeq;
  jsStreamInfo_Destroy(si);
  std::vector<Stored> out;
  for (auto seq = first; seq != 0 && seq <= last; ++seq) {
    natsMsg* m = nullptr;
    if (js_GetMsg(&m, raw.js(), stream.c_str(), seq, nullptr, &jerr) != NATS_OK) continue;
    Stored s;
    s.sequence = seq;
    s.subject = natsMsg_GetSubject(m);
    s.body.assign(natsMsg_GetData(m) != nullptr ? natsMsg_GetData(m) : "", static_cast<std::size_t>(natsMsg_GetDataLength(m)));
    s.headers = headers_of(m);
    natsMsg_Destroy(m);
    out.push_back(std::move(s));
  }
  return out;
}

inline std::uint64_t stream_count(catga::test::RawNats& raw, const std::string& stream) {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr{};
  if (js_GetStreamInfo(&si, raw.js(), stream.c_str(), nullptr, &jerr) != NATS_OK) return 0;
  const auto n = si->State.Msgs;
  jsStreamInfo_Destroy(si);
  return n;
}

}  // namespace nt
