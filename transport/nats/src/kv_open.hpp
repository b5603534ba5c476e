#pragma once
// open_kv: binds to a JetStream key-value bucket, creating it when absent.
// Shared by KvBucket and KvIdempotencyStore (one place for the nats.c calls).

#include <chrono>
#include <string>

#include "catga/nats/connection.hpp"
#include "catga/nats/options.hpp"
#include "catga/result.hpp"
#include "handle.hpp"

namespace catga::nats::detail {

// What the bucket is made with when it does not exist yet. An existing
// bucket is used as it is (a different ttl is logged, not changed).
struct KvSpec {
  std::string bucket;
  std::string description;
  int history = 1;
  std::chrono::nanoseconds ttl{0};  // 0: keep forever
  StorageType storage = StorageType::file;
  int replicas = 1;
  std::chrono::milliseconds timeout{5'000};  // Wait of the bucket's own jsCtx
  // See KvBucketOptions::allow_replicated_before_nats_2_10.
  bool allow_replicated_before_nats_2_10 = false;
};

// The bucket and the JetStream context it was opened with (declared first,
// so the bucket is destroyed before its context).
struct KvBinding {
  JsHandle js;
  KvHandle kv;
};

// Waits up to spec.timeout for the connection, then opens or creates the
// bucket; a peer creating it at the same time, or a replicated bucket whose
// stream is still electing its leader, is tried again until spec.timeout.
// A bucket with more than one replica (made now or before) on a server older
// than nats-server 2.10 is refused with a `validation` Error unless
// spec.allow_replicated_before_nats_2_10 (nats-server issue 4320).
//
//   auto b = detail::open_kv(*conn, {.bucket = "orders", .timeout = 5s});
//   kvStore_Put(nullptr, b->kv.get(), "k", "v", 1);
Result<KvBinding> open_kv(Connection& connection, const KvSpec& spec);

}  // namespace catga::nats::detail
