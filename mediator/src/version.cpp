#include "catga/version.hpp"

namespace catga {

std::string_view library_version() noexcept { return CATGA_VERSION_STRING; }

}  // namespace catga
