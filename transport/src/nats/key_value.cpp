#include "catga/nats/key_value.hpp"

#include <algorithm>

#include "connection_impl.hpp"
#include "error.hpp"
#include "handle.hpp"
#include "kv_open.hpp"
#include "log.hpp"

namespace catga::nats {

using detail::Surface;
using detail::to_error;

struct KvBucket::Impl {
  std::shared_ptr<Connection> connection;
  KvBucketOptions options;
  detail::KvBinding binding;  // own context: its Wait is options.timeout
  kvStore* kv() const noexcept { return binding.kv.get(); }
};

namespace detail {

Result<KvBinding> open_kv(Connection& connection, const KvSpec& spec) {
  KvBinding b;
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = std::max<std::int64_t>(spec.timeout.count(), 1);
  if (natsStatus s = natsConnection_JetStream(b.js.out(), connection.impl().conn(), &jo); s != NATS_OK) {
    return to_error(s, "JetStream context for KV");
  }
  if (auto c = connection.wait_connected(spec.timeout); !c) return std::move(c).error();

  natsStatus s = js_KeyValue(b.kv.out(), b.js.get(), spec.bucket.c_str());
  if (s == NATS_NOT_FOUND) {
    kvConfig cfg;
    kvConfig_Init(&cfg);
    cfg.Bucket = spec.bucket.c_str();
    if (!spec.description.empty()) cfg.Description = spec.description.c_str();
    cfg.History = static_cast<uint8_t>(std::clamp(spec.history, 1, 64));
    cfg.TTL = spec.ttl.count();
    cfg.StorageType = spec.storage == StorageType::memory ? js_MemoryStorage : js_FileStorage;
    cfg.Replicas = std::max(spec.replicas, 1);
    s = js_CreateKeyValue(b.kv.out(), b.js.get(), &cfg);
    if (s == NATS_OK) {
      log().info("catga.nats created KV bucket '{}'", spec.bucket);
      return b;
    }
    // Created by a peer in between?
    if (js_KeyValue(b.kv.out(), b.js.get(), spec.bucket.c_str()) != NATS_OK) {
      return to_error(s, "create KV bucket '" + spec.bucket + "'", Surface::jetstream);
    }
  } else if (s != NATS_OK) {
    return to_error(s, "open KV bucket '" + spec.bucket + "'", Surface::jetstream);
  }
  kvStatus* status = nullptr;
  if (kvStore_Status(&status, b.kv.get()) == NATS_OK) {
    if (kvStatus_TTL(status) != spec.ttl.count()) {
      log().warn("catga.nats KV bucket '{}' keeps its ttl of {} ns (configured {} ns)", spec.bucket,
                 kvStatus_TTL(status), spec.ttl.count());
    }
    kvStatus_Destroy(status);
  }
  return b;
}

}  // namespace detail

namespace {

Status check_key(std::string_view key) {
  const bool ok = !key.empty() && key.front() != '.' && key.back() != '.' &&
                  std::all_of(key.begin(), key.end(), [](char c) {
                    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                           c == '_' || c == '=' || c == '/' || c == '.';
                  });
  if (!ok) return make_error(errc::validation, "invalid KV key '" + std::string(key) + "' (use [-/_=.a-zA-Z0-9])");
  return {};
}

}  // namespace

KvBucket::KvBucket(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
KvBucket::~KvBucket() = default;

const KvBucketOptions& KvBucket::options() const noexcept { return impl_->options; }

Result<std::shared_ptr<KvBucket>> KvBucket::open(std::shared_ptr<Connection> connection, KvBucketOptions options) {
  if (!connection) return make_error(errc::validation, "KvBucket: no connection");
  if (options.bucket.empty()) return make_error(errc::validation, "KvBucket: empty bucket name");
  auto impl = std::make_unique<Impl>();
  impl->connection = std::move(connection);
  impl->options = std::move(options);
  const auto& o = impl->options;
  auto binding = detail::open_kv(*impl->connection, {.bucket = o.bucket,
                                                     .description = {},
                                                     .history = o.history,
                                                     .ttl = o.ttl,
                                                     .storage = o.storage,
                                                     .replicas = o.replicas,
                                                     .timeout = o.timeout});
  if (!binding) return std::move(binding).error();
  impl->binding = std::move(*binding);
  return std::shared_ptr<KvBucket>(new KvBucket(std::move(impl)));
}

Result<std::optional<KvEntry>> KvBucket::get(std::string_view key) {
  if (auto c = check_key(key); !c) return std::move(c).error();
  const std::string k(key);
  detail::KvEntryHandle e;
  const natsStatus s = kvStore_Get(e.out(), impl_->kv(), k.c_str());
  if (s == NATS_NOT_FOUND) return std::optional<KvEntry>();
  if (s != NATS_OK) return to_error(s, "KV get '" + k + "'", Surface::jetstream);
  const void* v = kvEntry_Value(e.get());
  KvEntry out;
  if (v != nullptr) out.value.assign(static_cast<const char*>(v), static_cast<std::size_t>(kvEntry_ValueLen(e.get())));
  out.revision = kvEntry_Revision(e.get());
  return std::optional<KvEntry>(std::move(out));
}

Result<std::uint64_t> KvBucket::create(std::string_view key, std::string_view value) {
  if (auto c = check_key(key); !c) return std::move(c).error();
  const std::string k(key);
  std::uint64_t rev = 0;
  const natsStatus s = kvStore_Create(&rev, impl_->kv(), k.c_str(), value.data(), static_cast<int>(value.size()));
  if (s == NATS_OK) return rev;
  Error err = to_error(s, "KV create '" + k + "'", Surface::jetstream);
  // The server answers "wrong last sequence" when the key exists; make that
  // a plain conflict whatever the error text says.
  if (auto now = get(key); now && *now) return make_error(errc::conflict, "KV key '" + k + "' exists", true);
  return err;
}

Result<std::uint64_t> KvBucket::update(std::string_view key, std::string_view value, std::uint64_t expected_revision) {
  if (auto c = check_key(key); !c) return std::move(c).error();
  const std::string k(key);
  std::uint64_t rev = 0;
  const natsStatus s = kvStore_Update(&rev, impl_->kv(), k.c_str(), value.data(), static_cast<int>(value.size()),
                                      expected_revision);
  if (s == NATS_OK) return rev;
  Error err = to_error(s, "KV update '" + k + "'", Surface::jetstream);
  if (auto now = get(key); now && (!*now || (*now)->revision != expected_revision)) {
    return make_error(errc::conflict, "KV key '" + k + "' is not at revision " + std::to_string(expected_revision), true);
  }
  return err;
}

Result<std::uint64_t> KvBucket::put(std::string_view key, std::string_view value) {
  if (auto c = check_key(key); !c) return std::move(c).error();
  const std::string k(key);
  std::uint64_t rev = 0;
  const natsStatus s = kvStore_Put(&rev, impl_->kv(), k.c_str(), value.data(), static_cast<int>(value.size()));
  if (s != NATS_OK) return to_error(s, "KV put '" + k + "'", Surface::jetstream);
  return rev;
}

Status KvBucket::erase(std::string_view key) {
  if (auto c = check_key(key); !c) return std::move(c).error();
  const std::string k(key);
  const natsStatus s = kvStore_Delete(impl_->kv(), k.c_str());
  if (s != NATS_OK && s != NATS_NOT_FOUND) return to_error(s, "KV delete '" + k + "'", Surface::jetstream);
  return {};
}

Result<std::vector<std::string>> KvBucket::keys(std::string_view prefix) {
  kvKeysList list{nullptr, 0};
  const natsStatus s = kvStore_Keys(&list, impl_->kv(), nullptr);
  std::vector<std::string> out;
  if (s == NATS_NOT_FOUND) return out;  // empty bucket
  if (s != NATS_OK) return to_error(s, "KV keys of '" + impl_->options.bucket + "'", Surface::jetstream);
  for (int i = 0; i < list.Count; ++i) {
    std::string_view k(list.Keys[i]);
    if (k.substr(0, prefix.size()) == prefix) out.emplace_back(k);
  }
  kvKeysList_Destroy(&list);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace catga::nats
