#pragma once
// The library's own code names the owning handles detail::…Handle; they are
// public, for code that calls nats.c itself (catga/nats/native/handle.hpp).

#include "catga/nats/native/handle.hpp"

namespace catga::nats::detail {

using native::ConnectionHandle;
using native::ConsumerInfoHandle;
using native::destroy_inbox;
using native::Handle;
using native::InboxHandle;
using native::JsHandle;
using native::KvEntryHandle;
using native::KvHandle;
using native::MsgHandle;
using native::OptionsHandle;
using native::PubAckHandle;
using native::StreamInfoHandle;
using native::SubscriptionHandle;

}  // namespace catga::nats::detail
