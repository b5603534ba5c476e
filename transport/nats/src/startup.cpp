#include "catga/nats/startup.hpp"

#include <algorithm>
#include <random>

#include "log.hpp"

namespace catga::nats {

using detail::log;
using Clock = std::chrono::steady_clock;

namespace {

// How often connect() looks at cancel() and the deadline while it waits.
constexpr auto kConnectSlice = std::chrono::milliseconds(200);

std::string seconds_text(std::chrono::milliseconds d) {
  return std::to_string(d.count() / 1000) + "." + std::to_string(d.count() % 1000 / 100) + " s";
}

std::string server_list(const NatsOptions& options) {
  std::string urls;
  for (const auto& u : options.servers) urls += (urls.empty() ? "" : ",") + detail::redact_url(u);
  return urls;
}

}  // namespace

Status StartupOptions::validate() const {
  if (timeout.count() < 0) return make_error(errc::validation, "StartupOptions: timeout must be >= 0 (0: none)");
  if (initial_backoff.count() <= 0 || max_backoff < initial_backoff) {
    return make_error(errc::validation, "StartupOptions: need 0 < initial_backoff <= max_backoff");
  }
  if (attempt_timeout.count() <= 0) return make_error(errc::validation, "StartupOptions: attempt_timeout must be > 0");
  if (warn_interval.count() < 0) return make_error(errc::validation, "StartupOptions: warn_interval must be >= 0");
  return {};
}

Startup::Startup(StartupOptions options) : options_(options), started_(Clock::now()) {}

Startup::~Startup() = default;

void Startup::cancel() noexcept {
  {
    std::lock_guard lock(mu_);
    cancelled_ = true;
  }
  cv_.notify_all();
}

bool Startup::cancelled() const noexcept {
  std::lock_guard lock(mu_);
  return cancelled_;
}

std::string Startup::status() const {
  std::lock_guard lock(mu_);
  return status_;
}

void Startup::set_status(std::string text) {
  std::lock_guard lock(mu_);
  status_ = std::move(text);
}

Error Startup::cancelled_error(std::string_view what) const {
  return make_error(errc::cancelled, "start-up cancelled while waiting for " + std::string(what), false);
}

Status Startup::begin(std::string_view what, int attempt) {
  if (auto s = options_.validate(); !s) return s;
  if (cancelled()) return cancelled_error(what);
  if (attempt == 1) set_status("starting: " + std::string(what));
  return {};
}

void Startup::succeeded(std::string_view what, int attempt) {
  if (attempt > 1) log().info("catga.nats start-up: {} is ready (after {} attempts)", what, attempt);
  set_status({});
}

bool Startup::pause_for(std::chrono::milliseconds pause) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, pause, [&] { return cancelled_; });
}

Status Startup::failed(std::string_view what, const Error& error, int attempt) {
  if (!error.retryable) {
    log().error("catga.nats start-up: {} failed: {} ({}, not retryable)", what, error.message, error.code);
    return error;
  }
  // Doubling pause, capped, plus up to a quarter of it at random so that
  // replicas started together do not ask in step.
  auto pause = options_.initial_backoff;
  for (int i = 1; i < attempt && pause < options_.max_backoff; ++i) pause *= 2;
  pause = std::min(pause, options_.max_backoff);
  if (pause.count() >= 4) {
    thread_local std::minstd_rand rng{std::random_device{}()};
    pause += std::chrono::milliseconds(rng() % static_cast<unsigned>(pause.count() / 4));
  }
  pause = std::max(pause, error.retry_after);

  const auto now = Clock::now();
  if (options_.timeout.count() > 0 && now + pause >= started_ + options_.timeout) {
    auto e = make_error(errc::timeout,
                        "start-up gave up after " + seconds_text(options_.timeout) + " waiting for " +
                            std::string(what) + ": " + error.message + " (attempt " + std::to_string(attempt) + ")",
                        true);
    log().error("catga.nats {}", e.message);
    return e;
  }
  std::string text =
      "waiting for " + std::string(what) + ": " + error.message + " (attempt " + std::to_string(attempt) + ")";
  bool warn = false;
  {
    std::lock_guard lock(mu_);
    status_ = text;
    warn = attempt == 1 || now - last_warn_ >= options_.warn_interval;
    if (warn) last_warn_ = now;
  }
  log().log(warn ? spdlog::level::warn : spdlog::level::debug, "catga.nats start-up: {}; next try in {} ms", text,
            pause.count());
  if (!pause_for(pause)) return cancelled_error(what);
  return {};
}

Result<std::shared_ptr<Connection>> Startup::connect(const NatsOptions& options) {
  const std::string what = "NATS at " + server_list(options);
  // Without retry_on_failed_connect, connect() itself fails while no server
  // answers (retryably): run() tries it again.
  auto made = run(what, [&] { return Connection::connect(options); });
  if (!made) return made;
  auto& conn = *made;
  while (true) {
    const auto why = conn->last_error();
    // The connection logs each failed round itself (at a bounded rate);
    // its last error names the servers, the attempt and the cause.
    set_status(why ? "waiting for NATS: " + why->message : "waiting for " + what + ": connecting");
    if (conn->wait_connected(kConnectSlice)) break;
    if (conn->state() == ConnectionState::closed) {
      // nats.c gave up (max_reconnect) or a server that came up refused us.
      auto e = make_error(errc::unavailable,
                          "the NATS connection closed while waiting for " + what +
                              (why ? ": " + why->message : std::string()),
                          false);
      log().error("catga.nats start-up: {}", e.message);
      return e;
    }
    if (cancelled()) return cancelled_error(what);
    if (options_.timeout.count() > 0 && Clock::now() >= started_ + options_.timeout) {
      auto e = make_error(errc::timeout,
                          "start-up gave up after " + seconds_text(options_.timeout) + " waiting for " + what +
                              (why ? ": " + why->message : std::string()),
                          true);
      log().error("catga.nats {}", e.message);
      return e;
    }
  }
  set_status({});
  return made;
}

}  // namespace catga::nats
