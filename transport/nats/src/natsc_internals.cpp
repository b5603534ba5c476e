#include "natsc_internals.hpp"

#include <cstdlib>
#include <cstring>
#include <strings.h>

#include "handle.hpp"
#include "library.hpp"
#include "log.hpp"

// nats.c's constructor of a message from wire parts (src/msg.h; the same
// signature from 3.0 to 3.13). Called only for version_known() versions.
extern "C" natsStatus natsMsg_create(natsMsg** msg, const char* subject, int subject_len, const char* reply,
                                     int reply_len, const char* buf, int buf_len, int header_len);
// Frees a message's memory (src/msg.h, exported): what nats.c's collector
// thread calls for each message handed to it.
extern "C" void natsMsg_free(void* object);

namespace catga::nats::detail::natsc_internals {
namespace {

constexpr std::string_view kPrefix = "NATS/1.0";
constexpr std::string_view kEnd = "\r\n\r\n";

// The block between the reply (or subject) and the body, both public; the
// shape is checked before it is trusted.
std::string_view locate_block(natsMsg* msg) noexcept {
  const char* data = natsMsg_GetData(msg);
  const char* before = natsMsg_GetReply(msg);
  if (before == nullptr) before = natsMsg_GetSubject(msg);
  if (data == nullptr || before == nullptr) return {};
  const char* hdr = before + std::strlen(before) + 1;
  // hdr .. data-1 is the block, data[-1] its '\0'; a message without
  // headers has its body right at hdr.
  if (data <= hdr || data - hdr > (1 << 24)) return {};
  const std::string_view block(hdr, static_cast<std::size_t>(data - hdr - 1));
  if (data[-1] != '\0' || block.size() < kPrefix.size() + kEnd.size()) return {};
  if (!block.starts_with(kPrefix) || !block.ends_with(kEnd)) return {};
  if (std::memchr(block.data(), '\0', block.size()) != nullptr) return {};  // lifted by nats.c
  return block;
}

// The check's messages are destroyed the plain way: destroy_message asks
// enabled(), which is being decided while the check runs.
using PlainMsg = native::Handle<natsMsg, &natsMsg_Destroy>;

std::string_view view(const char* s) { return s != nullptr ? std::string_view(s) : std::string_view("<null>"); }

// The values nats.c's API gives for `key`, joined by '|'.
std::string values_of(natsMsg* msg, const char* key) {
  const char** values = nullptr;
  int count = 0;
  if (natsMsgHeader_Values(msg, key, &values, &count) != NATS_OK) return "<none>";
  std::string out;
  for (int i = 0; i < count; ++i) out.append(i == 0 ? "" : "|").append(values[i]);
  std::free(static_cast<void*>(values));
  return out;
}

// One comparison of the check; appends to `why` when `got` is not `want`.
void expect(std::string& why, std::string_view what, std::string_view got, std::string_view want) {
  if (got == want) return;
  why.append(why.empty() ? "" : "; ").append(what).append(": '").append(got).append("', expected '").append(want);
  why.append("'");
}

bool decide() noexcept {
  const char* value = std::getenv(kSwitch);
  if (!switch_allows(value)) {
    log().debug("catga.nats: {}={}: nats.c's public header API only", kSwitch, value);
    return false;
  }
  if (!version_known(nats_GetVersionNumber())) return false;
  if (!open_library()) return false;  // as the connection does; messages are freed through its collector
  try {
    const std::string why = self_check();
    if (why.empty()) return true;
    log().warn("catga.nats: nats.c {} does not lay out messages as catga expects ({}); using nats.c's public "
               "header API only",
               nats_GetVersion(), why);
  } catch (...) {
  }
  return false;
}

}  // namespace

bool switch_allows(const char* value) noexcept {
  if (value == nullptr) return true;
  for (const char* off : {"0", "off", "false", "no"}) {
    if (strcasecmp(value, off) == 0) return false;
  }
  return true;
}

bool version_known(std::uint32_t version) noexcept { return version >= 0x030000 && version < 0x030E00; }

std::string self_check() {
  const std::string_view block = "NATS/1.0\r\nCatga-Type: Check\r\nNats-Msg-Id:  id-1 \r\nCatga-Type: again\r\n\r\n";
  const std::string_view body = R"({"n":1})";
  const std::string buf = std::string(block) + std::string(body);
  std::string why;
  // The same headers through the public API, for comparison.
  PlainMsg api;
  if (natsMsg_Create(api.out(), "catga.check", nullptr, body.data(), static_cast<int>(body.size())) != NATS_OK ||
      natsMsgHeader_Add(api.get(), "Catga-Type", "Check") != NATS_OK ||
      natsMsgHeader_Add(api.get(), "Nats-Msg-Id", "id-1") != NATS_OK ||
      natsMsgHeader_Add(api.get(), "Catga-Type", "again") != NATS_OK) {
    return "natsMsg_Create/natsMsgHeader_Add failed";
  }
  for (const char* reply : {static_cast<const char*>(nullptr), "_INBOX.check"}) {
    PlainMsg msg;
    if (natsMsg_create(msg.out(), "catga.check", 11, reply, reply != nullptr ? static_cast<int>(std::strlen(reply)) : 0,
                       buf.data(), static_cast<int>(buf.size()), static_cast<int>(block.size())) != NATS_OK) {
      return "natsMsg_create failed";
    }
    expect(why, "subject", view(natsMsg_GetSubject(msg.get())), "catga.check");
    expect(why, "reply", view(natsMsg_GetReply(msg.get())), view(reply));
    const char* data = natsMsg_GetData(msg.get());
    const int size = natsMsg_GetDataLength(msg.get());
    expect(why, "body", data != nullptr && size >= 0 ? std::string_view(data, static_cast<std::size_t>(size)) : "",
           body);
    // In place first: nats.c rewrites the block when it lifts it.
    expect(why, "block found in place", locate_block(msg.get()), block);
    for (const char* key : {"Catga-Type", "Nats-Msg-Id"}) {
      expect(why, key, values_of(msg.get(), key), values_of(api.get(), key));
    }
    const char* first = nullptr;
    natsMsgHeader_Get(msg.get(), "Catga-Type", &first);
    expect(why, "natsMsgHeader_Get", view(first), "Check");
  }
  return why;
}

bool enabled() noexcept {
  static const bool on = decide();
  return on;
}

std::string_view raw_header_block(natsMsg* msg) noexcept { return enabled() ? locate_block(msg) : std::string_view(); }

natsStatus create_message(natsMsg** out, std::string_view subject, const char* reply, const char* buf, int buf_len,
                          int header_len) noexcept {
  return natsMsg_create(out, subject.data(), static_cast<int>(subject.size()), reply,
                        reply != nullptr ? static_cast<int>(std::strlen(reply)) : 0, buf, buf_len, header_len);
}

bool free_in_place(natsMsg* msg) noexcept {
  if (msg == nullptr || !enabled()) return false;
  // nats.c's natsGCItem {next, freeCb} is the message's first member; the
  // slot is cleared only when it holds natsMsg_free, so any other layout
  // leaves the message as it is.
  auto** item = reinterpret_cast<void**>(msg);
  if (item[1] != reinterpret_cast<void*>(&natsMsg_free)) return false;
  item[1] = nullptr;
  return true;
}

}  // namespace catga::nats::detail::natsc_internals

namespace catga::nats::native {

void destroy_message(natsMsg* msg) noexcept {
  (void)detail::natsc_internals::free_in_place(msg);
  natsMsg_Destroy(msg);
}

}  // namespace catga::nats::native

