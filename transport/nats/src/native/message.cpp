#include "catga/nats/native/message.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "catga/nats/native/error.hpp"

namespace catga::nats::native {
namespace {

// nats.c wants C strings; header names are short, so they go on the stack.
template <class F>
auto with_c_string(std::string_view s, F&& f) {
  char buf[256];
  if (s.size() < sizeof buf) {
    std::memcpy(buf, s.data(), s.size());
    buf[s.size()] = '\0';
    return f(static_cast<const char*>(buf));
  }
  std::string copy(s);
  return f(copy.c_str());
}

}  // namespace

std::string header_safe(std::string_view value, std::size_t max) {
  std::string out;
  out.reserve(std::min(value.size(), max));
  for (char c : value) {
    if (out.size() >= max) break;
    out.push_back(c == '\r' || c == '\n' ? ' ' : c);
  }
  return out;
}

Status set_header(natsMsg* msg, std::string_view key, std::string_view value) {
  auto set = [&](std::string_view v) {
    return with_c_string(key, [&](const char* k) {
      return with_c_string(v, [&](const char* cv) { return natsMsgHeader_Set(msg, k, cv); });
    });
  };
  // The usual value is short and clean: no copy beyond the stack buffer.
  // (A plain loop: find_first_of("\r\n") calls memchr once per character.)
  bool line_break = false;
  for (const char c : value) line_break |= (c == '\r') | (c == '\n');
  const bool clean = value.size() <= kMaxHeaderValue && !line_break;
  const natsStatus s = clean ? set(value) : set(header_safe(value, kMaxHeaderValue));
  if (s != NATS_OK) return to_error(s, "set header '" + std::string(key) + "'");
  return {};
}

namespace {

// The header names of a message, as nats.c lists them (the array is ours to
// free; the strings belong to the message).
struct HeaderNames {
  const char** p = nullptr;
  int n = 0;
  explicit HeaderNames(natsMsg* msg) noexcept {
    if (natsMsgHeader_Keys(msg, &p, &n) != NATS_OK || p == nullptr) n = 0;
  }
  ~HeaderNames() { std::free(static_cast<void*>(p)); }
  HeaderNames(const HeaderNames&) = delete;
  HeaderNames& operator=(const HeaderNames&) = delete;
};

// The values nats.c holds for `key` (its array, freed here), passed to `use`.
template <class F>
void with_values(natsMsg* msg, const char* key, F&& use) {
  const char** values = nullptr;
  int n = 0;
  if (natsMsgHeader_Values(msg, key, &values, &n) != NATS_OK || values == nullptr) return;
  struct FreeValues {
    const char** p;
    ~FreeValues() { std::free(static_cast<void*>(p)); }
  } free_values{values};
  for (int j = 0; j < n; ++j) use(values[j]);
}

bool extends(std::string_view longer, std::string_view name) noexcept {
  return longer.size() > name.size() && longer.compare(0, name.size(), name) == 0;
}

// nats.c (3.4.1, and others) finds a header by a hash that ignores a name's
// last 2 or 3 bytes past a multiple of 4, then compares only the first
// strlen(name) bytes of the stored name (natsStrHash_GetEx): looking up
// "Catga-Correlation-Id" can return the values of "Catga-Correlation-Id-1"
// (found by the fuzz target; a sender could pass one header for another).
// A stored name is found exactly when no longer name starts with it. So the
// longer names are taken out, `name` is read (pointers into its own entry,
// which stays), and they are put back with their values.
std::vector<const char*> values_exactly(natsMsg* msg, const std::string& name, const std::vector<std::string>& names) {
  std::vector<std::pair<const std::string*, std::vector<std::string>>> longer;
  for (const auto& other : names) {
    if (!extends(other, name)) continue;
    longer.emplace_back(&other, std::vector<std::string>{});
    with_values(msg, other.c_str(), [&](const char* v) { longer.back().second.emplace_back(v); });
  }
  for (const auto& [other, values] : longer) natsMsgHeader_Delete(msg, other->c_str());
  std::vector<const char*> out;
  with_values(msg, name.c_str(), [&](const char* v) { out.push_back(v); });
  for (const auto& [other, values] : longer) {
    for (const auto& v : values) natsMsgHeader_Add(msg, other->c_str(), v.c_str());
  }
  return out;
}

bool any_name_extends_another(const HeaderNames& names) noexcept {
  for (int i = 0; i < names.n; ++i) {
    for (int j = 0; j < names.n; ++j) {
      if (i != j && extends(names.p[j], names.p[i])) return true;
    }
  }
  return false;
}

}  // namespace

std::optional<std::string_view> get_header(natsMsg* msg, std::string_view key) noexcept {
  try {
    HeaderNames names(msg);
    bool present = false;
    bool ambiguous = false;
    for (int i = 0; i < names.n; ++i) {
      const std::string_view n(names.p[i]);
      present |= n == key;
      ambiguous |= extends(n, key);
    }
    // nats.c would also answer for a longer name that starts with `key`.
    if (!present) return std::nullopt;
    if (ambiguous) {
      std::vector<std::string> all(names.p, names.p + names.n);
      const auto values = values_exactly(msg, std::string(key), all);
      if (values.empty()) return std::nullopt;
      return std::string_view(values.front());
    }
    const char* value = nullptr;
    const natsStatus s = with_c_string(key, [&](const char* k) { return natsMsgHeader_Get(msg, k, &value); });
    if (s != NATS_OK || value == nullptr) return std::nullopt;
    return std::string_view(value);
  } catch (...) {
    return std::nullopt;
  }
}

void for_each_header(natsMsg* msg, FunctionRef<void(std::string_view, std::string_view)> visit) {
  HeaderNames names(msg);
  if (!any_name_extends_another(names)) {
    for (int i = 0; i < names.n; ++i) {
      with_values(msg, names.p[i], [&](const char* v) { visit(names.p[i], v); });
    }
    return;
  }
  // Names are copied: taking a longer name out and putting it back frees
  // the string nats.c listed. The shorter names' values are read first,
  // then every name is visited as listed once all are back, so each view
  // the visitor keeps lives as long as the message.
  std::vector<std::pair<std::string, std::vector<const char*>>> exact;
  {
    // Shortest first: a name's entry is taken out only by the reads of
    // shorter names, all done before its own read.
    std::vector<std::string> all(names.p, names.p + names.n);
    std::stable_sort(all.begin(), all.end(), [](const std::string& a, const std::string& b) { return a.size() < b.size(); });
    for (const auto& name : all) {
      const bool shorter = std::any_of(all.begin(), all.end(), [&](const std::string& o) { return extends(o, name); });
      if (shorter) exact.emplace_back(name, values_exactly(msg, name, all));
    }
  }
  HeaderNames now(msg);
  for (int i = 0; i < now.n; ++i) {
    const auto known = std::find_if(exact.begin(), exact.end(), [&](const auto& e) { return e.first == now.p[i]; });
    if (known != exact.end()) {
      for (const char* v : known->second) visit(now.p[i], v);
    } else {
      with_values(msg, now.p[i], [&](const char* v) { visit(now.p[i], v); });
    }
  }
}

}  // namespace catga::nats::native
