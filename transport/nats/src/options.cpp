#include "catga/nats/options.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>

#include "log.hpp"

namespace catga::nats {
namespace {

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

std::string upper_token(std::string_view prefix) {
  std::string out;
  for (char c : prefix) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(std::isalnum(u) ? static_cast<char>(std::toupper(u)) : '_');
  }
  return out;
}

Status file_readable(const std::string& path, std::string_view what) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return make_error(errc::validation, std::string(what) + " '" + path + "' is not a readable file");
  }
  return {};
}

}  // namespace

std::vector<std::string> split_server_urls(std::string_view urls) {
  std::vector<std::string> out;
  for (;;) {
    const auto comma = urls.find(',');
    auto one = trim(urls.substr(0, comma));
    if (!one.empty()) out.push_back(std::move(one));
    if (comma == std::string_view::npos) return out;
    urls.remove_prefix(comma + 1);
  }
}

NatsOptions NatsOptions::from_env() { return from_env(NatsOptions{}); }

NatsOptions NatsOptions::from_env(NatsOptions o) {
  if (auto urls = env("NATS_URL")) o.servers = split_server_urls(*urls);
  if (auto v = env("NATS_NAME")) o.name = *v;
  if (auto v = env("NATS_USER")) o.user = *v;
  if (auto v = env("NATS_PASSWORD")) o.password = *v;
  if (auto v = env("NATS_TOKEN")) o.token = *v;
  if (auto v = env("NATS_CREDS")) o.credentials_file = *v;
  if (auto v = env("NATS_CA")) o.tls.ca_file = *v;
  if (auto v = env("NATS_CERT")) o.tls.cert_file = *v;
  if (auto v = env("NATS_KEY")) o.tls.key_file = *v;
  return o;
}

Status NatsOptions::validate() const {
  if (servers.empty()) return make_error(errc::validation, "NatsOptions: no server URL (set servers or NATS_URL)");
  for (const auto& s : servers) {
    if (s.empty()) return make_error(errc::validation, "NatsOptions: empty server URL");
  }
  if (!token.empty() && !user.empty()) {
    return make_error(errc::validation, "NatsOptions: set either user/password or token, not both");
  }
  if (!password.empty() && user.empty()) return make_error(errc::validation, "NatsOptions: password without user");
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return make_error(errc::validation, "NatsOptions: TLS client certificate and key must be set together");
  }
  if (!credentials_file.empty()) {
    if (auto s = file_readable(credentials_file, "credentials file"); !s) return s;
  }
  if (!tls.ca_file.empty()) {
    if (auto s = file_readable(tls.ca_file, "TLS CA file"); !s) return s;
  }
  if (!tls.cert_file.empty()) {
    if (auto s = file_readable(tls.cert_file, "TLS certificate file"); !s) return s;
    if (auto s = file_readable(tls.key_file, "TLS key file"); !s) return s;
  }
  if (connect_timeout.count() <= 0) return make_error(errc::validation, "NatsOptions: connect_timeout must be > 0");
  if (reconnect_wait.count() < 0 || max_reconnect_wait < reconnect_wait) {
    return make_error(errc::validation, "NatsOptions: need 0 <= reconnect_wait <= max_reconnect_wait");
  }
  return {};
}

std::size_t JetStreamOptions::serve_bound() const noexcept {
  if (serve_max_in_flight > 0) return serve_max_in_flight;
  return 32 * std::max<std::size_t>(serve_workers, 1);
}

std::string JetStreamOptions::events_stream() const {
  return events.name.empty() ? upper_token(prefix) + "_EVENTS" : events.name;
}

std::string JetStreamOptions::dead_letter_stream() const {
  return dead_letters.name.empty() ? upper_token(prefix) + "_DLQ" : dead_letters.name;
}

namespace detail {

std::string redact_url(std::string_view url) {
  const auto scheme = url.find("://");
  const auto start = scheme == std::string_view::npos ? 0 : scheme + 3;
  const auto at = url.find('@', start);
  const auto slash = url.find('/', start);
  if (at == std::string_view::npos || (slash != std::string_view::npos && slash < at)) return std::string(url);
  std::string out(url.substr(0, start));
  out.append("***").append(url.substr(at));
  return out;
}

}  // namespace detail
}  // namespace catga::nats
