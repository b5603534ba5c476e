#include "catga/nats/connection.hpp"

#include <algorithm>
#include <exception>
#include <random>
#include <thread>
#include <vector>

#include "connection_impl.hpp"
#include "error.hpp"
#include "library.hpp"
#include "log.hpp"

namespace catga::nats {

using detail::CallbackState;
using detail::log;
using detail::to_error;

std::string_view to_string(ConnectionState state) noexcept {
  switch (state) {
    case ConnectionState::connecting: return "connecting";
    case ConnectionState::connected: return "connected";
    case ConnectionState::reconnecting: return "reconnecting";
    case ConnectionState::draining: return "draining";
    case ConnectionState::closed: return "closed";
  }
  return "unknown";
}

namespace {

CallbackState& state_of(void* closure) { return *static_cast<CallbackState*>(closure); }

std::string current_url(natsConnection* nc) {
  char buf[512] = {0};
  if (natsConnection_GetConnectedUrl(nc, buf, sizeof buf) != NATS_OK) return {};
  return detail::redact_url(buf);
}

// Every callback below runs on a nats.c thread: nothing may escape them.
void on_error(natsConnection* nc, natsSubscription* sub, natsStatus err, void* closure) noexcept {
  try {
    auto& st = state_of(closure);
    const char* text = nullptr;
    natsConnection_GetLastError(nc, &text);
    std::string what = "asynchronous NATS error";
    if (sub != nullptr) {
      const char* subject = natsSubscription_GetSubject(sub);
      what += std::string(" on subscription '") + (subject != nullptr ? subject : "?") + "'";
    }
    auto e = to_error(err, what);
    if (text != nullptr && *text != '\0' && e.message.find(text) == std::string::npos) e.message += std::string(": ") + text;
    log().warn("catga.nats [{}] {}", st.name, e.message);
    st.set_error(std::move(e));
  } catch (...) {
  }
}

void on_disconnected(natsConnection* nc, void* closure) noexcept {
  try {
    auto& st = state_of(closure);
    const char* text = nullptr;
    natsConnection_GetLastError(nc, &text);
    std::string msg = "disconnected from NATS";
    if (text != nullptr && *text != '\0') msg += std::string(": ") + text;
    if (st.closing.load()) {
      log().debug("catga.nats [{}] {} (closing)", st.name, msg);
      return;
    }
    log().warn("catga.nats [{}] {}", st.name, msg);
    st.set_error(make_error(errc::unavailable, std::move(msg), true));
  } catch (...) {
  }
}

void on_reconnected(natsConnection* nc, void* closure) noexcept {
  try {
    auto& st = state_of(closure);
    st.failed_rounds.store(0);
    st.reconnects.fetch_add(1, std::memory_order_relaxed);
    st.reconnected_at_ns.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    log().info("catga.nats [{}] reconnected to {}", st.name, current_url(nc));
    std::lock_guard lock(st.mu);
    st.cv.notify_all();
  } catch (...) {
  }
}

void on_connected(natsConnection* nc, void* closure) noexcept {
  try {
    auto& st = state_of(closure);
    st.ever_connected.store(true);
    st.failed_rounds.store(0);
    log().info("catga.nats [{}] connected to {}", st.name, current_url(nc));
    std::lock_guard lock(st.mu);
    st.cv.notify_all();
  } catch (...) {
  }
}

void on_closed(natsConnection*, void* closure) noexcept {
  try {
    auto& st = state_of(closure);
    log().info("catga.nats [{}] connection closed", st.name);
    std::lock_guard lock(st.mu);
    st.closed = true;
    st.cv.notify_all();
  } catch (...) {
  }
}

void on_lame_duck(natsConnection*, void* closure) noexcept {
  try {
    log().warn("catga.nats [{}] server entered lame duck mode; it will close soon", state_of(closure).name);
  } catch (...) {
  }
}

// How often a connect or reconnect that keeps failing is logged at warn.
constexpr auto kRetryWarnInterval = std::chrono::seconds(5);

std::int64_t now_ns() { return std::chrono::steady_clock::now().time_since_epoch().count(); }

// Called by nats.c's retry loop before each round over the server list
// (`attempts` counts them from 1): the previous round, if any, failed.
// Records that for failed_attempts()/last_error() and logs it at a bounded
// rate, so a service waiting for its broker says so without flooding.
void note_failed_round(CallbackState& st, int attempts) {
  const std::uint64_t base = st.ever_connected.load() ? 0 : st.rounds_before_retry;
  const std::uint64_t failed = base + static_cast<std::uint64_t>(std::max(attempts - 1, 0));
  if (failed == 0) return;
  st.failed_rounds.store(failed);
  // This thread's last nats.c error is the failed connect of that round.
  natsStatus last = NATS_OK;
  nats_GetLastError(&last);
  auto e = to_error(last == NATS_OK ? NATS_NO_SERVER : last,
                    "connect to " + st.urls + " failed (attempt " + std::to_string(failed) + ")");
  e.retryable = true;
  const std::int64_t now = now_ns();
  if (st.last_retry_warn_ns == 0 ||
      now - st.last_retry_warn_ns >= std::chrono::nanoseconds(kRetryWarnInterval).count()) {
    st.last_retry_warn_ns = now;
    log().warn("catga.nats [{}] {}; still retrying", st.name, e.message);
  } else {
    log().debug("catga.nats [{}] {}; still retrying", st.name, e.message);
  }
  st.set_error(std::move(e));
}

// Doubling pause per round over the server list, capped, plus jitter.
int64_t reconnect_delay(natsConnection*, int attempts, void* closure) noexcept {
  try {
    auto& st = state_of(closure);
    note_failed_round(st, attempts);
    std::int64_t delay = st.reconnect_wait_ms;
    for (int i = 1; i < attempts && delay < st.max_reconnect_wait_ms; ++i) delay *= 2;
    delay = std::min(delay, st.max_reconnect_wait_ms);
    if (st.jitter_ms > 0) {
      thread_local std::minstd_rand rng{std::random_device{}()};
      delay += static_cast<std::int64_t>(rng() % static_cast<unsigned>(st.jitter_ms + 1));
    }
    return std::max<std::int64_t>(delay, 1);
  } catch (...) {
    return 1000;
  }
}

Status check(natsStatus s, std::string_view what) {
  if (s == NATS_OK) return {};
  return to_error(s, what);
}

Result<detail::OptionsHandle> build_options(const NatsOptions& o, CallbackState* st) {
  detail::OptionsHandle opts;
  if (auto s = check(natsOptions_Create(opts.out()), "natsOptions_Create"); !s) return std::move(s).error();
  natsOptions* p = opts.get();

  std::vector<const char*> urls;
  for (const auto& u : o.servers) urls.push_back(u.c_str());
  Status s = check(natsOptions_SetServers(p, urls.data(), static_cast<int>(urls.size())), "server URLs");
  if (s && !o.name.empty()) s = check(natsOptions_SetName(p, o.name.c_str()), "connection name");
  if (s && !o.user.empty()) s = check(natsOptions_SetUserInfo(p, o.user.c_str(), o.password.c_str()), "user/password");
  if (s && !o.token.empty()) s = check(natsOptions_SetToken(p, o.token.c_str()), "token");
  if (s && !o.credentials_file.empty()) {
    s = check(natsOptions_SetUserCredentialsFromFiles(p, o.credentials_file.c_str(), nullptr), "credentials file");
  }
  if (s && o.tls.active()) {
    s = check(natsOptions_SetSecure(p, true), "TLS");
    if (s && !o.tls.ca_file.empty()) {
      s = check(natsOptions_LoadCATrustedCertificates(p, o.tls.ca_file.c_str()), "TLS CA file");
    }
    if (s && !o.tls.cert_file.empty()) {
      s = check(natsOptions_LoadCertificatesChain(p, o.tls.cert_file.c_str(), o.tls.key_file.c_str()),
                "TLS client certificate/key");
    }
    if (s && !o.tls.verify) s = check(natsOptions_SkipServerVerification(p, true), "TLS verification");
    if (s && !o.tls.expected_hostname.empty()) {
      s = check(natsOptions_SetExpectedHostname(p, o.tls.expected_hostname.c_str()), "TLS expected hostname");
    }
  }
  if (s) s = check(natsOptions_SetTimeout(p, o.connect_timeout.count()), "connect timeout");
  if (s) s = check(natsOptions_SetAllowReconnect(p, true), "reconnect");
  if (s) s = check(natsOptions_SetMaxReconnect(p, o.max_reconnect), "max reconnect");
  if (s) s = check(natsOptions_SetReconnectWait(p, o.reconnect_wait.count()), "reconnect wait");
  if (s) {
    s = check(natsOptions_SetReconnectJitter(p, o.reconnect_jitter.count(), o.reconnect_jitter_tls.count()),
              "reconnect jitter");
  }
  if (s) s = check(natsOptions_SetCustomReconnectDelay(p, &reconnect_delay, st), "reconnect delay");
  if (s) s = check(natsOptions_SetReconnectBufSize(p, o.reconnect_buffer_bytes), "reconnect buffer");
  if (s) s = check(natsOptions_SetPingInterval(p, o.ping_interval.count()), "ping interval");
  if (s) s = check(natsOptions_SetMaxPingsOut(p, o.max_pings_out), "max pings out");
  if (s) s = check(natsOptions_SetSendAsap(p, o.send_asap), "send asap");
  if (s) s = check(natsOptions_SetErrorHandler(p, &on_error, st), "error handler");
  if (s) s = check(natsOptions_SetDisconnectedCB(p, &on_disconnected, st), "disconnected handler");
  if (s) s = check(natsOptions_SetReconnectedCB(p, &on_reconnected, st), "reconnected handler");
  if (s) s = check(natsOptions_SetClosedCB(p, &on_closed, st), "closed handler");
  if (s) s = check(natsOptions_SetLameDuckModeCB(p, &on_lame_duck, st), "lame duck handler");
  // Retry-on-failed-connect is enabled by connect() only after a first plain
  // attempt found no server: otherwise nats.c would hide a wrong password or
  // a TLS failure behind background retries.
  if (!s) return std::move(s).error();
  return opts;
}

// Extra connect attempts after an authorization refusal with a credentials
// file (see Connection::connect): all three fail by chance once in 2^32.
constexpr int kSignatureRetries = 3;

// Failures that mean "no server there (yet)", as opposed to a server that
// refused us.
bool server_not_up(natsStatus s) noexcept {
  return s == NATS_NO_SERVER || s == NATS_IO_ERROR || s == NATS_TIMEOUT;
}

bool uses_tls(const NatsOptions& o) {
  if (o.tls.active()) return true;
  return std::any_of(o.servers.begin(), o.servers.end(), [](const std::string& u) { return u.rfind("tls://", 0) == 0; });
}

Error connect_error(natsStatus s, const NatsOptions& options) {
  std::string urls;
  for (const auto& u : options.servers) urls += (urls.empty() ? "" : ",") + detail::redact_url(u);
  auto e = to_error(s, "connect to " + urls);
  // With --tlsverify the server hangs up after its side of the handshake
  // fails; nats.c then only sees "Expected 'PONG', got ''" (3.4) or reports
  // the connection closed (3.10). Trying again would be refused the same way.
  if ((s == NATS_PROTOCOL_ERROR || s == NATS_CONNECTION_CLOSED) && uses_tls(options)) {
    e.message +=
        " (the server closed the connection during the TLS handshake: it may require a client certificate "
        "(NATS_CERT/NATS_KEY) or reject the one given)";
    e.retryable = false;
  }
  return e;
}

}  // namespace

void Connection::Impl::retire(detail::SubscriptionHandle sub, std::chrono::milliseconds wait) noexcept {
  if (!sub) return;
  if (natsSubscription_IsValid(sub.get())) natsSubscription_Unsubscribe(sub.get());
  if (natsConnection_FlushTimeout(nc.get(), std::max<std::int64_t>(wait.count(), 1)) == NATS_OK) {
    sub.reset();
    return;
  }
  try {
    park(std::move(sub));
  } catch (...) {
    (void)sub.release();  // leaked rather than freed under the read thread
  }
}

void Connection::Impl::retire_later(detail::SubscriptionHandle sub) noexcept {
  if (!sub) return;
  if (natsSubscription_IsValid(sub.get())) natsSubscription_Unsubscribe(sub.get());
  try {
    std::lock_guard lock(retiring_mu);
    if (retiring_stop) {
      park(std::move(sub));
      return;
    }
    retiring.push_back(std::move(sub));
    if (!retirer.joinable()) retirer = std::thread([this] { retire_loop(); });
  } catch (...) {
    if (sub) (void)sub.release();  // no thread, no memory: leaked rather than freed under the read thread
    return;
  }
  retiring_cv.notify_one();
}

void Connection::Impl::retire_loop() noexcept {
  std::unique_lock lock(retiring_mu);
  for (;;) {
    retiring_cv.wait(lock, [&] { return retiring_stop || !retiring.empty(); });
    if (retiring_stop) return;
    std::vector<detail::SubscriptionHandle> batch;
    batch.swap(retiring);
    lock.unlock();
    // Every one of them was unsubscribed before this PING: once its PONG
    // is read, the read thread is done with them.
    if (natsConnection_FlushTimeout(nc.get(), 1'000) == NATS_OK) {
      batch.clear();
    } else {
      for (auto& sub : batch) {
        try {
          park(std::move(sub));
        } catch (...) {
          (void)sub.release();
        }
      }
    }
    lock.lock();
  }
}

void Connection::Impl::stop_retirer() noexcept {
  {
    std::lock_guard lock(retiring_mu);
    retiring_stop = true;
  }
  retiring_cv.notify_all();
  if (retirer.joinable()) retirer.join();
  std::vector<detail::SubscriptionHandle> left;
  {
    std::lock_guard lock(retiring_mu);
    left.swap(retiring);
  }
  std::lock_guard lock(parked_mu);
  for (auto& sub : left) parked.push_back(std::move(sub));  // destroyed after the close below
}

Connection::Impl::~Impl() {
  stop_retirer();
  if (nc) {
    callbacks->closing.store(true);
    if (!natsConnection_IsClosed(nc.get())) natsConnection_Close(nc.get());
    bool closed = false;
    {
      std::unique_lock lock(callbacks->mu);
      closed = callbacks->cv.wait_for(lock, std::chrono::seconds(5), [&] { return callbacks->closed; });
    }
    parked.clear();  // closed: the read thread delivers nothing more
    replies.clear();
    js.reset();
    nc.reset();
    if (!closed) {
      // A callback might still run with this closure: keep it alive.
      log().warn("catga.nats [{}] no close notification from nats.c; keeping its callback state", callbacks->name);
      (void)callbacks.release();
    }
  }
}

Connection::Connection(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Connection::~Connection() = default;

Result<std::shared_ptr<Connection>> Connection::connect(const NatsOptions& options) {
  if (auto s = options.validate(); !s) return std::move(s).error();
  if (!detail::open_library()) return make_error(errc::internal, "nats.c could not be initialised (nats_Open)");
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->callbacks = std::make_unique<CallbackState>();
  auto& st = *impl->callbacks;
  st.name = options.name;
  for (const auto& u : options.servers) st.urls += (st.urls.empty() ? "" : ",") + detail::redact_url(u);
  st.reconnect_wait_ms = std::max<std::int64_t>(options.reconnect_wait.count(), 1);
  st.max_reconnect_wait_ms = std::max<std::int64_t>(options.max_reconnect_wait.count(), st.reconnect_wait_ms);
  st.jitter_ms = options.tls.active() ? options.reconnect_jitter_tls.count() : options.reconnect_jitter.count();

  auto opts = build_options(options, &st);
  if (!opts) return std::move(opts).error();
  natsStatus s = natsConnection_Connect(impl->nc.out(), opts->get());
  // nats.c before 3.8 sends no signature when the signature's first byte
  // is 0 (its base64 encoder stops at a leading NUL; nats.c PR 705), so one
  // connect in 256 with a credentials file is refused. Each attempt signs a
  // new nonce: a few more attempts tell that apart from wrong credentials.
  for (int retry = 0; retry < kSignatureRetries && s == NATS_CONNECTION_AUTH_FAILED && !options.credentials_file.empty();
       ++retry) {
    log().debug("catga.nats [{}] authorization refused; trying again with a new nonce", options.name);
    s = natsConnection_Connect(impl->nc.out(), opts->get());
  }
  std::string waiting_for;
  if (s != NATS_OK && options.retry_on_failed_connect && server_not_up(s)) {
    // Nobody listening yet (a service starting before its broker): keep
    // trying in the background. Anything else (auth, TLS) is reported now.
    // connect() has made two rounds when nats.c's retry loop starts.
    auto first = to_error(s, "connect to " + st.urls + " failed (attempt 2)");
    first.retryable = true;
    waiting_for = first.message;
    st.set_error(std::move(first));
    s = natsOptions_SetRetryOnFailedConnect(opts->get(), true, &on_connected, &st);
    st.rounds_before_retry = 2;
    st.failed_rounds.store(2);
    st.last_retry_warn_ns = now_ns();
    if (s == NATS_OK) s = natsConnection_Connect(impl->nc.out(), opts->get());
  }
  if (s == NATS_NOT_YET_CONNECTED) {
    log().warn("catga.nats [{}] {}; retrying in the background", options.name, waiting_for);
  } else if (s != NATS_OK) {
    auto e = connect_error(s, options);
    log().error("catga.nats [{}] {}", options.name, e.message);
    return e;
  } else {
    st.ever_connected.store(true);
    st.failed_rounds.store(0);
    log().info("catga.nats [{}] connected to {}", options.name, current_url(impl->nc.get()));
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = 5000;
  if (natsStatus js = natsConnection_JetStream(impl->js.out(), impl->nc.get(), &jo); js != NATS_OK) {
    return to_error(js, "JetStream context");
  }
  return std::shared_ptr<Connection>(new Connection(std::move(impl)));
}

ConnectionState Connection::state() const noexcept {
  switch (natsConnection_Status(impl_->conn())) {
    case NATS_CONN_STATUS_CONNECTED: return ConnectionState::connected;
    case NATS_CONN_STATUS_CONNECTING: return ConnectionState::connecting;
    case NATS_CONN_STATUS_RECONNECTING:
    case NATS_CONN_STATUS_DISCONNECTED:
      // A first connect retried in the background also shows as reconnecting.
      return impl_->callbacks->ever_connected.load() ? ConnectionState::reconnecting : ConnectionState::connecting;
    case NATS_CONN_STATUS_DRAINING_SUBS:
    case NATS_CONN_STATUS_DRAINING_PUBS: return ConnectionState::draining;
    case NATS_CONN_STATUS_CLOSED: return ConnectionState::closed;
  }
  return ConnectionState::closed;
}

Status Connection::wait_connected(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto& st = *impl_->callbacks;
  std::unique_lock lock(st.mu);
  while (true) {
    const auto s = state();
    if (s == ConnectionState::connected) return {};
    if (s == ConnectionState::closed) return make_error(errc::unavailable, "NATS connection is closed", false);
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      return make_error(errc::timeout,
                        "not connected to NATS after " + std::to_string(timeout.count()) + " ms (" +
                            std::string(to_string(s)) + ")",
                        true);
    }
    // Callbacks notify; the short cap covers a notification that raced us.
    st.cv.wait_until(lock, std::min(deadline, now + std::chrono::milliseconds(50)));
  }
}

std::uint64_t Connection::reconnects() const noexcept { return impl_->callbacks->reconnects.load(); }

std::uint64_t Connection::failed_attempts() const noexcept {
  return connected() ? 0 : impl_->callbacks->failed_rounds.load();
}

std::optional<Error> Connection::last_error() const {
  std::lock_guard lock(impl_->callbacks->mu);
  return impl_->callbacks->last_error;
}

std::string Connection::connected_url() const {
  if (!connected()) return {};
  return current_url(impl_->conn());
}

const std::string& Connection::name() const noexcept { return impl_->options.name; }

Status Connection::close(std::chrono::milliseconds timeout) {
  {
    std::lock_guard lock(impl_->close_mu);
    if (impl_->close_started) return {};
    impl_->close_started = true;
  }
  natsConnection* nc = impl_->conn();
  impl_->callbacks->closing.store(true);
  impl_->replies.shut();
  if (natsConnection_IsClosed(nc)) return {};
  Status result;
  if (state() == ConnectionState::connected) {
    // Drain: unsubscribe everything, deliver what is buffered, flush
    // publishes, then close. Not possible while disconnected.
    natsStatus s = natsConnection_DrainTimeout(nc, std::max<std::int64_t>(timeout.count(), 1));
    if (s == NATS_OK) {
      auto& st = *impl_->callbacks;
      std::unique_lock lock(st.mu);
      if (!st.cv.wait_for(lock, timeout + std::chrono::seconds(1), [&] { return st.closed; })) {
        result = make_error(errc::timeout, "NATS drain did not finish in time", true);
      }
    } else {
      result = to_error(s, "drain NATS connection");
    }
  }
  if (!natsConnection_IsClosed(nc)) natsConnection_Close(nc);
  return result;
}

}  // namespace catga::nats
