#pragma once
// Names the calling thread (Linux keeps 15 characters), so `top -H`, gdb and
// perf show which catga thread is which.
//
//   name_this_thread("catga-fetch");

#include <pthread.h>

#include <string>
#include <string_view>

namespace catga::nats::detail {

inline void name_this_thread(std::string_view name) noexcept {
#if defined(__linux__)
  char buf[16] = {};
  name.copy(buf, sizeof buf - 1);
  (void)pthread_setname_np(pthread_self(), buf);
#else
  (void)name;
#endif
}

}  // namespace catga::nats::detail
