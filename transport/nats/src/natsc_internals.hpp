#pragma once
// nats.c's private memory, used for speed: the only file that touches it.

#include <nats/nats.h>

#include <cstdint>
#include <string>
#include <string_view>

// catga reads and writes three things nats.c does not offer in nats.h:
//
// - the raw header block of a received message, read in place (HeaderBlock,
//   header_block.hpp) instead of through natsMsgHeader_Get, which lifts every
//   header into a hash that nats.c's garbage-collector thread frees again;
// - natsMsg_create, nats.c's constructor for received messages (src/msg.h,
//   exported), which takes a ready header block: make_message hands it one
//   instead of setting each header through natsMsgHeader_Set;
// - a message's collector slot (free_in_place): natsMsg_Destroy hands every
//   message to nats.c's collector thread and wakes it when it sleeps, one
//   thread switch per message; catga's messages are freed where they are
//   destroyed instead.
//
// All are used only while enabled() is true; otherwise catga uses nats.c's
// public API alone (same messages, same answers; slower: docs/benchmark-history.md,
// "nats.c internals").
//
//   if (natsc_internals::enabled()) { auto block = natsc_internals::raw_header_block(msg); }
namespace catga::nats::detail::natsc_internals {

// Name of the switch: CATGA_NATSC_INTERNALS=off (or 0, false, no) turns the
// shortcuts off for the process.
inline constexpr const char* kSwitch = "CATGA_NATSC_INTERNALS";

// Decided once per process, on first use (the first message built or read):
// the switch allows it, the nats.c version is one whose source was read
// (version_known), and self_check() passes. A failed check is logged once
// (warning) and catga goes on with the public API.
bool enabled() noexcept;

// False for "0", "off", "false", "no" (any case); true otherwise and when unset.
bool switch_allows(const char* value) noexcept;

// nats.c 3.0 to 3.13 (nats_GetVersionNumber): natsMsg_create has the same
// signature in all of them and puts a message in one allocation, in this
// order: subject '\0', reply '\0' (when there is one), header block '\0',
// body. The signature cannot be checked at run time, so other versions are
// left alone whatever self_check says.
bool version_known(std::uint32_t version) noexcept;

// Builds messages through natsMsg_create (with and without a reply) and
// through nats.c's public API (natsMsg_Create + natsMsgHeader_Add), and
// checks with nats.c's own accessors (natsMsg_GetSubject/GetReply/GetData,
// natsMsgHeader_Get/Values) that they agree, and that raw_header_block finds
// the block where it was written. Empty when all agree; otherwise what
// differed. Needs nats_Open (messages are freed through nats.c's collector).
std::string self_check();

// The raw header block ("NATS/1.0\r\nKey: Value\r\n...\r\n") of a received
// message, or empty when it cannot be located safely: not enabled(), no
// headers, headers already lifted by nats.c (it writes '\0's into the block),
// or a shape that is not a header block.
std::string_view raw_header_block(natsMsg* msg) noexcept;

// natsMsg_create: a new message whose buffer `buf` is the header block
// (`header_len` bytes, 0 for none) followed by the body. Call only while
// enabled().
natsStatus create_message(natsMsg** out, std::string_view subject, const char* reply, const char* buf, int buf_len,
                          int header_len) noexcept;

// Makes natsMsg_Destroy free `msg` on the calling thread instead of giving
// it to nats.c's collector thread (which frees it with the same
// natsMsg_free). False, and `msg` unchanged, when not enabled() or the
// message does not hold natsMsg_free where nats.c 3.x keeps it.
//
//   natsc_internals::free_in_place(msg);
//   natsMsg_Destroy(msg);  // freed here
bool free_in_place(natsMsg* msg) noexcept;

}  // namespace catga::nats::detail::natsc_internals
