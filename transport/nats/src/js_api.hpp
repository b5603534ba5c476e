#pragma once
// Helpers for the library's JetStream API calls (js_GetStreamInfo,
// js_Streams, js_ConsumerNames, ...): request options with a wait, and
// owning handles for the lists nats.c returns.

#include <nats/nats.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "handle.hpp"

namespace catga::nats::detail {

// jsOptions that wait at most `wait` (at least 1 ms: 0 would mean nats.c's default).
inline jsOptions api_options(std::chrono::milliseconds wait) {
  jsOptions o;
  jsOptions_Init(&o);
  o.Wait = std::max<std::int64_t>(wait.count(), 1);
  return o;
}

using StreamInfoListHandle = Handle<jsStreamInfoList, &jsStreamInfoList_Destroy>;
using ConsumerInfoListHandle = Handle<jsConsumerInfoList, &jsConsumerInfoList_Destroy>;
using ConsumerNamesListHandle = Handle<jsConsumerNamesList, &jsConsumerNamesList_Destroy>;

}  // namespace catga::nats::detail
