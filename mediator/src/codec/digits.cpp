// The out-of-line entry points to the digit readers (ascii_digits.hpp) for
// code outside catga::mediator: parse_lower_hex_u64 (catga/message_id.hpp)
// and wire::read_count (catga/wire.hpp).

#include "ascii_digits.hpp"
#include "catga/message_id.hpp"
#include "catga/wire.hpp"

namespace catga {

bool parse_lower_hex_u64(const char* p, std::uint64_t& out) noexcept { return ascii::lower_hex16(p, out); }

std::size_t wire::read_count(std::string_view s, std::uint64_t& value) noexcept {
  const std::size_t digits = ascii::digit_run(s.data(), s.data() + s.size());
  if (digits > 0 && digits <= 19) value = ascii::decimal(s.data(), digits);
  return digits;
}

}  // namespace catga
