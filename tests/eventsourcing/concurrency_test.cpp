// Two processes append to the same aggregate at the same time, 1,000 rounds.
// A process-shared barrier makes both read the same position each round, so
// every round is a real race: exactly one append may win, the other must be
// told `conflict`, and the stream must hold exactly the winners.
#include <doctest/doctest.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <set>

#include "es_test_support.hpp"

using namespace catga::eventsourcing;

namespace {

constexpr int kRounds = 1000;

struct Shared {
  pthread_barrier_t barrier;
  int wins[2];
  int conflicts[2];
  int other_errors[2];
  char won[2][kRounds];  // per writer and round: 1 when its append succeeded
};

// One writer process: its own connection; per round read the position, meet
// the other writer, append one event naming (writer, round).
int writer(const std::string& url, int me, Shared* sh) {
  try {
    auto store =
        EventStore::create(est::connect_to({url}, "writer-" + std::to_string(me)), est::memory_store()).value();
    const StreamId acc{"Account", "race"};
    for (int round = 0; round < kRounds; ++round) {
      pthread_barrier_wait(&sh->barrier);
      auto at = store->last(acc);
      pthread_barrier_wait(&sh->barrier);  // both have read: both expect the same version
      if (!at) {
        ++sh->other_errors[me];
        continue;
      }
      auto r = store->append(acc, *at, {EventData{"Renamed", 0, {{"name", std::to_string(me) + ":" + std::to_string(round)}}}});
      if (r) {
        ++sh->wins[me];
        sh->won[me][round] = 1;
      } else if (r.error().code == "conflict" && r.error().retryable) {
        ++sh->conflicts[me];
      } else {
        ++sh->other_errors[me];
        std::fprintf(stderr, "writer %d round %d: %s\n", me, round, r.error().message.c_str());
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "writer %d: %s\n", me, e.what());
    return 1;
  }
}

}  // namespace

TEST_CASE("two processes racing on one aggregate: one winner per round, no lost update, every conflict surfaced") {
  catga::test::NatsServer server;
  auto* sh = static_cast<Shared*>(mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  REQUIRE(sh != MAP_FAILED);
  std::memset(sh, 0, sizeof(Shared));
  pthread_barrierattr_t attr;
  pthread_barrierattr_init(&attr);
  pthread_barrierattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_barrier_init(&sh->barrier, &attr, 2);
  // No nats.c call and no id generated in this process before the fork:
  // children would inherit nats.c's inbox generator (and catga's id
  // generator) and share reply inboxes. Both writers provision the stream.
  pid_t pids[2];
  for (int me = 0; me < 2; ++me) {
    pids[me] = fork();
    REQUIRE(pids[me] >= 0);
    if (pids[me] == 0) {
      alarm(240);  // never outlive a stuck partner
      _exit(writer(server.url(), me, sh));
    }
  }
  for (pid_t pid : pids) {
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }

  CHECK(sh->other_errors[0] + sh->other_errors[1] == 0);
  const int wins = sh->wins[0] + sh->wins[1];
  CHECK(wins == kRounds);                                    // somebody won every round...
  CHECK(sh->conflicts[0] + sh->conflicts[1] == kRounds);     // ...and the other one was told

  auto store = est::store_on(est::connect(server));
  const StreamId acc{"Account", "race"};
  auto commits = store->read(acc).value();
  REQUIRE(commits.size() == static_cast<std::size_t>(wins));
  CHECK(store->last(acc).value().version == static_cast<std::uint64_t>(wins));
  std::set<std::string> stored;
  for (std::size_t i = 0; i < commits.size(); ++i) {
    REQUIRE(commits[i].events.size() == 1);
    CHECK(commits[i].events[0].version == i + 1);
    stored.insert(commits[i].events[0].data.at("name").get<std::string>());
  }
  // Exactly the appends that reported success are stored.
  std::set<std::string> reported;
  for (int me = 0; me < 2; ++me) {
    for (int round = 0; round < kRounds; ++round) {
      if (sh->won[me][round]) reported.insert(std::to_string(me) + ":" + std::to_string(round));
    }
  }
  CHECK(stored == reported);
  munmap(sh, sizeof(Shared));
}
