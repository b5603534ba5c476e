#pragma once
// HeaderBlock: the headers of a received message, read in place.

#include <nats/nats.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

namespace catga::nats::detail {

// Where nats.c keeps the raw header block ("NATS/1.0\r\nKey: Value\r\n...\r\n")
// of a message received from the server; empty when it cannot be located
// safely (no headers, another nats.c version, headers already lifted).
//
// nats.c has no accessor for it. Versions 3.0 to 3.9 (read in their source)
// put a received message in one allocation, in this order: subject '\0',
// reply '\0' (when there is one), header block '\0', body '\0'; so the block
// lies between the reply (or subject) and the body, both public. The
// function checks the runtime version and the block's shape (prefix,
// terminator, the '\0' before the body, no '\0' inside — nats.c writes
// some when it lifts the headers) before trusting it.
std::string_view raw_header_block(natsMsg* msg) noexcept;

// True for the nats.c versions whose internals catga relies on (3.0 to 3.9,
// read in their source): the layout raw_header_block reads, and
// natsMsg_create, which make_message (message.cpp) uses to build a message
// from a ready header block.
bool nats_internals_known() noexcept;

// Visible ASCII without ':', at least one character: the header names read
// in place here, and the only ones catga publishes.
bool is_header_name(std::string_view name) noexcept;

// The headers of a received message, parsed from the raw block without a
// copy or an allocation. nats.c's own lookup (natsMsgHeader_Get) lifts every
// header into a hash on first use, which its garbage-collector thread frees
// again: on the consume path that cost as much as the rest of catga's
// bookkeeping. Values are trimmed as nats.c trims them (whitespace after the
// colon and before CRLF); keys are matched exactly, as nats.c matches them.
//
// valid() is false for anything unusual — no block found, a status line
// ("NATS/1.0 503"), folded lines, a line nats.c would reject, more than
// kMaxFields headers — and callers then use nats.c's API, so the answers
// stay nats.c's (tests/nats/header_block_test.cpp compares both on raw
// header blocks sent through a real server).
//
//   HeaderBlock h(msg);
//   if (h.valid()) { auto type = h.get("Catga-Type"); }
class HeaderBlock {
 public:
  static constexpr std::size_t kMaxFields = 24;

  explicit HeaderBlock(natsMsg* msg) noexcept { parse(raw_header_block(msg)); }

  bool valid() const noexcept { return valid_; }
  // The first value of `key`, nullopt when absent.
  std::optional<std::string_view> get(std::string_view key) const noexcept {
    for (std::size_t i = 0; i < count_; ++i) {
      if (fields_[i].first == key) return fields_[i].second;
    }
    return std::nullopt;
  }
  // visit(key, value) for every header, in wire order.
  template <class Visit>
  void for_each(Visit&& visit) const {
    for (std::size_t i = 0; i < count_; ++i) visit(fields_[i].first, fields_[i].second);
  }
  std::size_t size() const noexcept { return count_; }

 private:
  void parse(std::string_view block) noexcept;

  std::array<std::pair<std::string_view, std::string_view>, kMaxFields> fields_;
  std::uint8_t count_ = 0;
  bool valid_ = false;
};

}  // namespace catga::nats::detail
