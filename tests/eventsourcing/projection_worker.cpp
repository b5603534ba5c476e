// A projection process for projection_test: runs the balance read model
// until killed. Usage: es_projection_worker <nats-url> <db> <name> <slow 0|1> <rebuild 0|1> <marker-file>
// With rebuild = 1 it calls rebuild() first, then writes <marker-file>.
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <thread>

#include "es_test_support.hpp"
#include "read_model.hpp"

int main(int argc, char** argv) {
  if (argc != 7) {
    std::cerr << "usage: es_projection_worker <url> <db> <name> <slow> <rebuild> <marker>\n";
    return 2;
  }
  try {
    auto store =
        catga::eventsourcing::EventStore::create(est::connect_to({argv[1]}, "projection-worker"), est::memory_store())
            .value();
    auto p = catga::eventsourcing::SqliteProjection::start(
                 store, {.name = argv[3], .database = argv[2], .batch = 16, .ack_wait = std::chrono::seconds(5)},
                 est::balance_model(std::string(argv[4]) == "1"))
                 .value();
    if (std::string(argv[5]) == "1") {
      p->rebuild().value();
      std::ofstream(argv[6]) << "rebuilding\n";
    }
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));  // until killed
  } catch (const std::exception& e) {
    std::cerr << "es_projection_worker: " << e.what() << "\n";
    return 1;
  }
}
