// The nats-server fixture itself: start, restart on the same port and store,
// kill, cleanup.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "nats_server.hpp"
#include "raw_nats.hpp"

using catga::test::NatsServer;
using catga::test::RawNats;

namespace {

std::uint64_t stream_messages(RawNats& raw, const char* stream) {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr{};
  catga::test::check(js_GetStreamInfo(&si, raw.js(), stream, nullptr, &jerr), "js_GetStreamInfo");
  const auto n = si->State.Msgs;
  jsStreamInfo_Destroy(si);
  return n;
}

void add_stream(RawNats& raw, const char* name, const char* subject) {
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = name;
  const char* subjects[] = {subject};
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  jsErrCode jerr{};
  catga::test::check(js_AddStream(nullptr, raw.js(), &cfg, nullptr, &jerr), "js_AddStream");
}

}  // namespace

TEST_CASE("the fixture runs a JetStream server whose store survives restart, on the same url") {
  std::filesystem::path dir;
  {
    NatsServer server;
    dir = server.directory();
    REQUIRE(server.running());
    const auto url = server.url();
    CHECK(url.rfind("nats://127.0.0.1:", 0) == 0);
    {
      RawNats raw(url);
      add_stream(raw, "FIXTURE", "fixture.>");
      catga::test::check(js_Publish(nullptr, raw.js(), "fixture.a", "x", 1, nullptr, nullptr), "js_Publish");
      CHECK(stream_messages(raw, "FIXTURE") == 1);
    }
    server.restart();
    CHECK(server.url() == url);
    {
      RawNats raw(url);
      CHECK(stream_messages(raw, "FIXTURE") == 1);
    }
    server.kill();
    CHECK_FALSE(server.running());
    CHECK_THROWS(RawNats(url));
    server.start();
    RawNats raw(url);
    CHECK(stream_messages(raw, "FIXTURE") == 1);
  }
  CHECK_FALSE(std::filesystem::exists(dir));
}

TEST_CASE("a server constructed without start has its url before it runs") {
  catga::test::NatsServerOptions options;
  options.start = false;
  NatsServer server(options);
  CHECK_FALSE(server.running());
  CHECK_THROWS(RawNats(server.url()));
  server.start();
  RawNats raw(server.url());
  CHECK(natsConnection_Status(raw.nc()) == NATS_CONN_STATUS_CONNECTED);
}
