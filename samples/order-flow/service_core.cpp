#include "service_core.hpp"

#include <spdlog/sinks/sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <algorithm>
#include <mutex>

#include "message_rules.hpp"

namespace order_flow {

namespace {

bool needs_escape(char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }

class EscapingSink final : public spdlog::sinks::sink {
 public:
  explicit EscapingSink(std::shared_ptr<spdlog::sinks::sink> inner) : inner_(std::move(inner)) {}
  void log(const spdlog::details::log_msg& msg) override {
    const std::string_view text(msg.payload.data(), msg.payload.size());
    if (std::none_of(text.begin(), text.end(), needs_escape)) {
      inner_->log(msg);
      return;
    }
    const std::string escaped = escape_log_text(text);
    spdlog::details::log_msg copy = msg;
    copy.payload = escaped;
    inner_->log(copy);
  }
  void flush() override { inner_->flush(); }
  void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter(std::unique_ptr<spdlog::formatter> f) override { inner_->set_formatter(std::move(f)); }

 private:
  std::shared_ptr<spdlog::sinks::sink> inner_;
};

}  // namespace

std::string escape_log_text(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (char c : text) {
    if (!needs_escape(c)) {
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      const auto u = static_cast<unsigned char>(c);
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    }
  }
  return out;
}

std::shared_ptr<spdlog::sinks::sink> escaping_sink(std::shared_ptr<spdlog::sinks::sink> inner) {
  return std::make_shared<EscapingSink>(std::move(inner));
}

std::shared_ptr<spdlog::logger> service_logger(const std::string& instance) {
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  if (auto existing = spdlog::get(instance)) return existing;
  // One stderr sink for every service of the process keeps lines whole.
  static auto sink = escaping_sink(std::make_shared<spdlog::sinks::stderr_sink_mt>());
  auto logger = std::make_shared<spdlog::logger>(instance, sink);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e level=%l instance=%n %v");
  logger->set_level(spdlog::default_logger()->level());
  spdlog::register_logger(logger);
  return logger;
}

HandledByBehavior::HandledByBehavior(catga::Metrics& metrics, const std::string& service, const std::string& instance,
                                     std::string_view type)
    : ok_(metrics.counter(
          "order_flow_handled_total", "Messages handled by this instance, by type and outcome",
          {{"service", service}, {"instance", instance}, {"type", std::string(type)}, {"outcome", "ok"}})),
      failed_(metrics.counter(
          "order_flow_handled_total", "Messages handled by this instance, by type and outcome",
          {{"service", service}, {"instance", instance}, {"type", std::string(type)}, {"outcome", "failed"}})) {}

catga::Status HandledByBehavior::handle(catga::Invocation&, catga::Next next) {
  catga::Status s = next();
  (s ? ok_ : failed_).inc();
  return s;
}

ServiceCore::ServiceCore(std::string service, ServiceEnv env) : env_(std::move(env)), service_(std::move(service)) {
  if (env_.instance.empty()) env_.instance = service_ + "-" + catga::MessageId::generate().text().str().substr(0, 8);
  if (!env_.metrics) env_.metrics = std::make_shared<catga::Metrics>();
  log_ = env_.logger ? env_.logger : service_logger(env_.instance);
  if (env_.transport != nullptr) mediator_.attach(*env_.transport);
  if (env_.spans) mediator_.trace_to(env_.spans);

  // Outermost first: every call is logged (with its correlation id) and
  // measured, invalid messages stop early, deadlines apply, transient
  // failures are retried; idempotency is added per handled type (see
  // per_type), innermost, so a retry re-claims the message id.
  // [snippet:order-flow-pipeline]
  catga::LoggingOptions logging;
  logging.logger = log_;
  logging.success_level = spdlog::level::info;
  mediator_.use(std::make_shared<catga::LoggingBehavior>(logging));
  mediator_.use(std::make_shared<catga::MetricsBehavior>(env_.metrics));
  validation_ = std::make_shared<catga::ValidationBehavior>();
  add_message_rules(*validation_);  // message_rules.hpp: every command and event
  mediator_.use(validation_);
  catga::TimeoutOptions timeout;
  timeout.default_timeout = env_.handler_timeout;
  mediator_.use(std::make_shared<catga::TimeoutBehavior>(timeout));
  catga::RetryOptions retry;
  retry.max_attempts = 3;
  retry.initial_delay = std::chrono::milliseconds(20);
  mediator_.use(std::make_shared<catga::RetryBehavior>(retry));
  if (env_.idempotency) {
    catga::IdempotencyOptions idem;
    idem.store = env_.idempotency;
    // Business rule failures are answers too: a duplicate gets the same one.
    idem.remember_failures = true;
    // A replica killed mid-handler leaves its claim in progress. Each
    // redelivery waits on it until its deadline (handler_timeout) and counts
    // against max_deliver (10), so the claim must be taken over well before
    // 10 x handler_timeout (the default, 5 min, sent such events to the DLQ),
    // yet never while its owner may still be running.
    idem.lease = 3 * env_.handler_timeout;
    idempotency_ = std::make_shared<catga::IdempotencyBehavior>(idem);
  }
  // [/snippet:order-flow-pipeline]
}

ServiceCore::~ServiceCore() { close(); }

catga::Status ServiceCore::open() {
  for (auto& open_one : openers_) {
    auto sub = open_one();
    if (!sub) return std::move(sub).error();
    subscriptions_.push_back(std::move(*sub));
  }
  openers_.clear();
  return {};
}

void ServiceCore::close() noexcept {
  // Newest first: consumers stop before the commands they may send.
  while (!subscriptions_.empty()) {
    subscriptions_.back().stop();
    subscriptions_.pop_back();
  }
}

std::string log_ids(const catga::Context& ctx) {
  // traceparent is "00-<32 hex trace id>-<16 hex span id>-<flags>".
  return "correlation=" + ctx.correlation_id.text().str() + " trace=" + ctx.trace.traceparent().str().substr(3, 32);
}

}  // namespace order_flow
