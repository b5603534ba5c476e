// The 3-node cluster fixture itself: an R3 stream survives the loss of its
// leader, a new leader is elected, and the killed node catches up.
#include <doctest/doctest.h>

#include <string>

#include "nats_cluster.hpp"
#include "raw_nats.hpp"

using catga::test::NatsCluster;

namespace {

void add_r3_stream(catga::test::RawNats& raw, const char* name, const char* subject) {
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = name;
  const char* subjects[] = {subject};
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Replicas = 3;
  jsErrCode jerr{};
  catga::test::check(js_AddStream(nullptr, raw.js(), &cfg, nullptr, &jerr), "js_AddStream R3");
}

std::uint64_t messages(catga::test::RawNats& raw, const char* stream) {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr{};
  catga::test::check(js_GetStreamInfo(&si, raw.js(), stream, nullptr, &jerr), "js_GetStreamInfo");
  const auto n = si->State.Msgs;
  jsStreamInfo_Destroy(si);
  return n;
}

}  // namespace

TEST_CASE("a 3-node cluster keeps an R3 stream through the loss of its leader") {
  std::filesystem::path dir;
  {
    NatsCluster cluster;
    dir = cluster.directory();
    REQUIRE(cluster.urls().size() == 3);
    CHECK(cluster.url_list().find(',') != std::string::npos);
    for (int i = 0; i < NatsCluster::kNodes; ++i) {
      CHECK(cluster.running(i));
      CHECK(std::filesystem::exists(cluster.store_dir(i)));
    }

    const auto leader = [&] {
      catga::test::RawNats raw(cluster.url(0));
      add_r3_stream(raw, "CLUSTER", "cluster.>");
      for (int i = 0; i < 10; ++i) {
        catga::test::check(js_Publish(nullptr, raw.js(), "cluster.a", "x", 1, nullptr, nullptr), "js_Publish");
      }
      return cluster.wait_for_stream_leader("CLUSTER");
    }();
    REQUIRE(leader.has_value());
    CHECK(NatsCluster::node_of(NatsCluster::name(*leader)) == leader);

    cluster.kill(*leader);
    CHECK_FALSE(cluster.running(*leader));
    const auto next = cluster.wait_for_stream_leader("CLUSTER", leader);
    REQUIRE(next.has_value());
    CHECK(*next != *leader);
    {
      catga::test::RawNats raw(cluster.url(*next));
      CHECK(messages(raw, "CLUSTER") == 10);
      catga::test::check(js_Publish(nullptr, raw.js(), "cluster.a", "y", 1, nullptr, nullptr), "publish after loss");
      CHECK(messages(raw, "CLUSTER") == 11);
    }

    cluster.restart(*leader);
    CHECK(cluster.running(*leader));
    CHECK(cluster.wait_for_meta_leader());
  }
  CHECK_FALSE(std::filesystem::exists(dir));
}
