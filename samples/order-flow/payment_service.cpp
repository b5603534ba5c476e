#include "payment_service.hpp"

#include <spdlog/fmt/fmt.h>
#include <spdlog/logger.h>
#include <catga/saga/record.hpp>
#include <thread>

#include "kv_json.hpp"

namespace order_flow {
namespace {

constexpr std::string_view kBucket = "payments";

std::string charge_key(std::string_view order) { return "charge." + key_token(order); }

}  // namespace

PaymentService::PaymentService(ServiceEnv env, PaymentOptions options)
    : ServiceCore("payment", std::move(env)), options_(std::move(options)) {
  handle<ChargePayment>([this](const ChargePayment& c, catga::Context& ctx) -> catga::Result<PaymentReceipt> {
    auto r = charge(c);
    if (r) {
      log().info("charged order={} customer={} amount={:.2f} {}", c.order_id, c.customer, c.amount, log_ids(ctx));
    } else {
      log().info("not charged order={} code={} reason=\"{}\" {}", c.order_id, r.error().code, r.error().message,
                 log_ids(ctx));
    }
    return r;
  });
  handle<RefundPayment>([this](const RefundPayment& c, catga::Context& ctx) -> catga::Status {
    auto s = refund(c);
    if (s) log().info("refund done order={} {}", c.order_id, log_ids(ctx));
    return s;
  });
}

catga::Status PaymentService::start() {
  auto kv = bucket(kBucket);
  if (!kv) return std::move(kv).error();
  kv_ = std::move(*kv);
  return open();
}

catga::Result<double> PaymentService::limit_of(const std::string& customer) {
  auto doc = load_json(*kv_, "limit." + key_token(customer));
  if (!doc) return std::move(doc).error();
  if (*doc && (*doc)->value.is_number()) return (*doc)->value.get<double>();
  return options_.default_limit;
}

catga::Result<PaymentReceipt> PaymentService::charge(const ChargePayment& c) {
  if (options_.latency.count() > 0) std::this_thread::sleep_for(options_.latency);
  auto limit = limit_of(c.customer);
  if (!limit) return std::move(limit).error();
  std::string decline;
  if (c.customer == options_.declined_customer) {
    decline = "customer '" + c.customer + "' is declined by the card issuer";
  } else if (c.amount > *limit) {
    decline = fmt::format("amount {:.2f} exceeds the limit {:.2f} of customer '{}'", c.amount, *limit, c.customer);
  }
  const auto now = catga::unix_ms_now();
  nlohmann::json record = {{"order_id", c.order_id},     {"customer", c.customer},
                           {"amount", c.amount},         {"state", decline.empty() ? "charged" : "declined"},
                           {"charged", decline.empty()}, {"payment_id", decline.empty() ? "pay-" + c.order_id : ""},
                           {"reason", decline},          {"by", instance()},
                           {"updated_ms", now}};
  // One record per order: the first decision stands for every repeat.
  auto stored = create_json(*kv_, charge_key(c.order_id), record);
  if (!stored) return std::move(stored).error();
  const auto& doc = stored->entry.value;
  const std::string state = doc.at("state").get<std::string>();
  if (state == "charged") {
    const std::string payment_id = doc.at("payment_id").get<std::string>();
    // A failed publish fails the charge (retryable): the saga sends it again,
    // the repeat finds this decision and publishes again (so on every path).
    if (auto s = publish_once(PaymentCharged{c.order_id, doc.at("customer").get<std::string>(),
                                             doc.at("amount").get<double>(), payment_id, doc.at("by").get<std::string>(),
                                             doc.at("updated_ms").get<std::int64_t>()},
                              c.order_id + ".charged");
        !s) {
      return std::move(s).error();
    }
    return PaymentReceipt{payment_id, doc.at("by").get<std::string>()};
  }
  if (state == "declined") {
    const std::string reason = doc.at("reason").get<std::string>();
    if (auto s = publish_once(PaymentFailed{c.order_id, doc.at("customer").get<std::string>(),
                                            doc.at("amount").get<double>(), reason, doc.at("by").get<std::string>(),
                                            doc.at("updated_ms").get<std::int64_t>()},
                              c.order_id + ".payment-failed");
        !s) {
      return std::move(s).error();
    }
    return catga::make_error(errc::payment_declined, reason);
  }
  // "refunded" before any charge: the order was given up meanwhile.
  return catga::make_error(errc::payment_refunded, "order " + c.order_id + " was refunded before it was charged");
}

catga::Status PaymentService::refund(const RefundPayment& c) {
#ifdef ORDER_FLOW_TEST_BROKEN_REFUND
  // Only in the test-only binary order-flow-broken-refund
  // (tests/order-flow/CMakeLists.txt), never in order-flow: the compensation
  // claims success and refunds nothing, so the chaos checks must fail.
  log().warn("TEST BUILD order-flow-broken-refund: refund of order {} skipped on purpose", c.order_id);
  return {};
#endif
  auto r = modify_json(*kv_, charge_key(c.order_id), [&](nlohmann::json& d) -> catga::Result<Write> {
    const auto now = catga::unix_ms_now();
    if (d.is_null()) {
      // Never charged: remember the refund so a late ChargePayment refuses.
      d = {{"order_id", c.order_id}, {"customer", ""},   {"amount", 0.0},
           {"state", "refunded"},    {"charged", false}, {"payment_id", ""},
           {"reason", c.reason},     {"by", instance()}, {"updated_ms", now}};
      return Write::yes;
    }
    if (d.at("state") != "charged") return Write::no;  // declined or refunded already
    d["state"] = "refunded";
    d["reason"] = c.reason;
    d["refunded_by"] = instance();
    d["updated_ms"] = now;
    return Write::yes;
  });
  if (!r) return std::move(r).error();
  return {};
}

catga::Result<PaymentTotals> PaymentService::totals() {
  auto keys = kv_->keys("charge.");
  if (!keys) return std::move(keys).error();
  PaymentTotals t;
  for (const auto& k : *keys) {
    auto doc = load_json(*kv_, k);
    if (!doc) return std::move(doc).error();
    if (!*doc) continue;
    const auto& d = (*doc)->value;
    const std::string state = d.value("state", "");
    const bool charged = d.value("charged", false);
    const double amount = d.value("amount", 0.0);
    if (charged) {
      t.charged += amount;
      ++t.charges;
    }
    if (charged && state == "refunded") {
      t.refunded += amount;
      ++t.refunds;
    }
    if (state == "declined") ++t.declined;
  }
  return t;
}

catga::Result<nlohmann::json> PaymentService::snapshot() {
  auto t = totals();
  if (!t) return std::move(t).error();
  auto keys = kv_->keys("charge.");
  if (!keys) return std::move(keys).error();
  nlohmann::json out;
  out["charges"] = nlohmann::json::object();
  for (const auto& k : *keys) {
    auto doc = load_json(*kv_, k);
    if (doc && *doc) {
      const auto& d = (*doc)->value;
      out["charges"][d.value("order_id", k)] = {{"state", d.value("state", "")},
                                                {"amount", d.value("amount", 0.0)},
                                                {"charged", d.value("charged", false)},
                                                {"reason", d.value("reason", "")},
                                                {"by", d.value("by", "")}};
    }
  }
  out["totals"] = {{"charged", t->charged}, {"refunded", t->refunded}, {"net", t->charged - t->refunded},
                   {"charges", t->charges}, {"refunds", t->refunds},   {"declined", t->declined}};
  return out;
}

}  // namespace order_flow
