#pragma once
// WatchedKeyValue: a KeyValue wrapper for saga store tests. It counts reads
// of saga records (keys without a '.'; the store's index keys have one) to
// show which sagas a recovery pass or a metrics scrape touches, and can
// refuse writes as a bucket out of reach for a moment would.

#include <atomic>
#include <catga/key_value.hpp>
#include <memory>
#include <string_view>
#include <utility>

namespace saga_test_support {

class WatchedKeyValue final : public catga::KeyValue {
 public:
  explicit WatchedKeyValue(std::shared_ptr<catga::KeyValue> inner) : inner_(std::move(inner)) {}

  catga::Result<std::optional<catga::KvEntry>> get(std::string_view key) override {
    if (is_record(key)) ++record_reads;
    if (key.substr(0, 7) == "active." && key != "active.meta") ++index_reads;
    return inner_->get(key);
  }
  catga::Result<std::uint64_t> create(std::string_view key, std::string_view value) override {
    if (auto e = refused(key)) return *e;
    return inner_->create(key, value);
  }
  catga::Result<std::uint64_t> update(std::string_view key, std::string_view value, std::uint64_t rev) override {
    if (auto e = refused(key)) return *e;
    return inner_->update(key, value, rev);
  }
  catga::Result<std::uint64_t> put(std::string_view key, std::string_view value) override {
    if (auto e = refused(key)) return *e;
    return inner_->put(key, value);
  }
  catga::Status erase(std::string_view key) override {
    if (auto e = refused(key)) return *e;
    return inner_->erase(key);
  }
  catga::Result<std::vector<std::string>> keys(std::string_view prefix) override { return inner_->keys(prefix); }

  std::atomic<int> record_reads{0};
  std::atomic<int> index_reads{0};  // of the index shards "active.NN"
  std::atomic<bool> refuse_index_writes{false};
  std::atomic<bool> refuse_record_writes{false};

 private:
  static bool is_record(std::string_view key) { return key.find('.') == std::string_view::npos; }
  std::optional<catga::Error> refused(std::string_view key) const {
    if (is_record(key) ? refuse_record_writes.load() : refuse_index_writes.load()) {
      return catga::make_error(catga::errc::unavailable, "bucket out of reach (test)", true);
    }
    return std::nullopt;
  }

  std::shared_ptr<catga::KeyValue> inner_;
};

}  // namespace saga_test_support
