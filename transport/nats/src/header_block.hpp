#pragma once
// HeaderBlock: the headers of a received message, read in place.

#include <nats/nats.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

#include "natsc_internals.hpp"

namespace catga::nats::detail {

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
// The block is found by natsc_internals::raw_header_block (nats.c's private
// layout, checked at start-up, CATGA_NATSC_INTERNALS=off turns it off).
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

  explicit HeaderBlock(natsMsg* msg) noexcept { parse(natsc_internals::raw_header_block(msg)); }

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
