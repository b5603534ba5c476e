#include "security_support.hpp"

#include <doctest/doctest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <fstream>

#include "catga/mediator.hpp"
#include "catga/nats/jetstream_transport.hpp"
#include "wait_for.hpp"

namespace security_support {
struct Carried {
  std::string what;
};
CATGA_EVENT(Carried, what)
}  // namespace security_support

namespace catga::test {

using namespace std::chrono_literals;

ScratchDir::ScratchDir(std::string_view what)
    : path_(std::filesystem::temp_directory_path() /
            ("catga-" + std::string(what) + "-" + std::to_string(::getpid()))) {
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string ScratchDir::write(std::string_view name, std::string_view text) const {
  const auto file = path_ / name;
  std::ofstream(file) << text;
  std::filesystem::permissions(file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  return file.string();
}

catga::nats::NatsOptions connect_once(std::string url, std::string name) {
  catga::nats::NatsOptions o;
  o.servers = {std::move(url)};
  o.name = std::move(name);
  o.retry_on_failed_connect = false;
  o.max_reconnect = 0;
  o.connect_timeout = 10s;
  return o;
}

CapturedLog::CapturedLog() : previous_(spdlog::default_logger()) {
  auto logger = std::make_shared<spdlog::logger>("captured", std::make_shared<spdlog::sinks::ostream_sink_mt>(out_));
  logger->set_level(spdlog::level::trace);
  spdlog::set_default_logger(logger);
}

CapturedLog::~CapturedLog() { spdlog::set_default_logger(previous_); }

std::string CapturedLog::text() {
  spdlog::default_logger()->flush();
  return out_.str();
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool mentions(std::string_view text, std::string_view word) {
  return lowercase(text).find(lowercase(word)) != std::string::npos;
}

void check_round_trip(const catga::nats::NatsOptions& options) {
  catga::nats::JetStreamOptions js;
  js.events.storage = catga::nats::StorageType::memory;
  js.dead_letters.storage = catga::nats::StorageType::memory;
  js.startup_timeout = 20s;
  auto t = catga::nats::JetStreamTransport::create(options, js);
  REQUIRE_MESSAGE(t, (t ? "" : t.error().message));
  catga::Mediator m;
  m.attach(**t);
  std::atomic<int> got{0};
  catga::SubscribeOptions so;
  so.group = "audit";
  auto sub = m.subscribe<security_support::Carried>(so, [&](const security_support::Carried&) { ++got; });
  REQUIRE(sub);
  REQUIRE(m.publish(security_support::Carried{"secured"}));
  CHECK(catga::test::wait_for([&] { return got.load() == 1; }, 30s));
  CHECK((*t)->stop(10s));
}

}  // namespace catga::test
