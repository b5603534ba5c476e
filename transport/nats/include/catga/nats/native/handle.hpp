#pragma once
// Handle<T, destroy>: owns one nats.c object and destroys it exactly once.
//
// catga/nats/native/ is the nats.c level of catga::nats, for code that calls
// nats.c itself (the event store does): these headers include <nats/nats.h>,
// so a target using them links cnats::nats too (the installed package
// provides it). Everything else in catga/nats/ is free of nats.c types.

#include <nats/nats.h>

#include <utility>

namespace catga::nats::native {

// A unique owner of a nats.c pointer. `out()` gives the `T**` the C
// constructors fill in; `release()` is for the calls that take ownership
// (write the handover next to the call, e.g. js_PublishMsgAsync clears the
// pointer it took through `out()`).
//
//   catga::nats::native::MsgHandle msg;
//   natsMsg_Create(msg.out(), subject, nullptr, data, len);
//   natsConnection_PublishMsg(nc, msg.get());  // borrowed; destroyed by ~Handle
template <class T, void (*Destroy)(T*)>
class Handle {
 public:
  Handle() noexcept = default;
  explicit Handle(T* p) noexcept : p_(p) {}
  Handle(Handle&& other) noexcept : p_(std::exchange(other.p_, nullptr)) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) reset(std::exchange(other.p_, nullptr));
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }

  T* get() const noexcept { return p_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }
  // Destroys the current object, then exposes the slot to a C constructor.
  T** out() noexcept {
    reset();
    return &p_;
  }
  // Gives up ownership (the caller or a C function now owns it).
  [[nodiscard]] T* release() noexcept { return std::exchange(p_, nullptr); }
  void reset(T* p = nullptr) noexcept {
    if (p_ != nullptr) Destroy(p_);
    p_ = p;
  }

 private:
  T* p_ = nullptr;
};

inline void destroy_inbox(natsInbox* inbox) { natsInbox_Destroy(inbox); }

using OptionsHandle = Handle<natsOptions, &natsOptions_Destroy>;
using ConnectionHandle = Handle<natsConnection, &natsConnection_Destroy>;
using SubscriptionHandle = Handle<natsSubscription, &natsSubscription_Destroy>;
// natsMsg_Destroy, freeing the message on this thread: nats.c would hand it
// to its collector thread and wake that thread (a thread switch per
// message). Falls back to plain natsMsg_Destroy where catga does not use
// nats.c's internals (CATGA_NATSC_INTERNALS=off, another nats.c version).
//
//   natsMsg* m = nullptr;
//   if (natsSubscription_NextMsg(&m, sub, 1000) == NATS_OK) destroy_message(m);
void destroy_message(natsMsg* msg) noexcept;
using MsgHandle = Handle<natsMsg, &destroy_message>;
using JsHandle = Handle<jsCtx, &jsCtx_Destroy>;
using KvHandle = Handle<kvStore, &kvStore_Destroy>;
using KvEntryHandle = Handle<kvEntry, &kvEntry_Destroy>;
using StreamInfoHandle = Handle<jsStreamInfo, &jsStreamInfo_Destroy>;
using ConsumerInfoHandle = Handle<jsConsumerInfo, &jsConsumerInfo_Destroy>;
using PubAckHandle = Handle<jsPubAck, &jsPubAck_Destroy>;
using InboxHandle = Handle<natsInbox, &destroy_inbox>;

}  // namespace catga::nats::native
