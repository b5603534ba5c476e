#pragma once
// NatsCluster: a 3-node nats-server cluster with JetStream on loopback, for
// fault tests (node loss, leader election) and replicated-stream tests.

#include <sys/types.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "child_process.hpp"

namespace catga::test {

// How to start the cluster.
struct NatsClusterOptions {
  // The binary; empty: $CATGA_NATS_SERVER, else nats-server on PATH, else /usr/sbin/nats-server.
  std::string binary;
  // Start the nodes and wait for a JetStream meta leader in the constructor.
  bool start = true;
  // How long start()/restart() wait for a node to accept connections, and
  // wait_for_meta_leader() for the election.
  std::chrono::milliseconds start_timeout{60'000};
};

// Owns three nats-server processes named n1, n2, n3 (node index 0, 1, 2),
// clustered by routes on loopback, each with JetStream and its own store
// directory under one temp directory. Ports are chosen once, so a node
// restarted after kill() comes back on the same URL with the same store.
// The destructor stops every node and removes the directory; if the test
// process dies, the nodes get SIGKILL too (parent-death signal).
//
//   catga::test::NatsCluster cluster;                // 3 nodes up, meta leader elected
//   opts.servers = cluster.urls();                   // client fails over between nodes
//   ... create an R3 stream "ORDERS" ...
//   int leader = cluster.stream_leader("ORDERS").value();
//   cluster.kill(leader);                            // SIGKILL: the others elect a new leader
//   cluster.restart(leader);                         // same port, same store; catches up
class NatsCluster {
 public:
  static constexpr int kNodes = 3;

  explicit NatsCluster(NatsClusterOptions options = {});
  ~NatsCluster();
  NatsCluster(const NatsCluster&) = delete;
  NatsCluster& operator=(const NatsCluster&) = delete;

  // Starts every stopped node, then waits for a JetStream meta leader.
  // Throws std::runtime_error (with the log tails) on failure.
  void start();
  // SIGTERM to every node, then waits (SIGKILL after 10 s).
  void stop();

  // Node `node` (0..2): SIGKILL (a crash), graceful stop, or start again on
  // the same port and store (waits until it accepts connections).
  void kill(int node);
  void stop(int node);
  void restart(int node);
  bool running(int node) const;
  // SIGSTOP / SIGCONT: a frozen node keeps its sockets open but answers
  // nothing (requests routed to it are never answered). stop() and the
  // destructor thaw a frozen node first.
  void freeze(int node);
  void thaw(int node);

  // Client URLs of all nodes ("nats://127.0.0.1:<port>"), for NatsOptions::servers.
  std::vector<std::string> urls() const;
  // The same, comma separated (for NATS_URL / --server).
  std::string url_list() const;
  std::string url(int node) const;
  // "n1", "n2", "n3".
  static std::string name(int node);
  // The index of the node called `server_name`, if it is one of ours.
  static std::optional<int> node_of(const std::string& server_name);

  // Waits until a running node answers JetStream API requests (a meta
  // leader exists) and an R3 stream can be placed (the leader knows every
  // peer; needs all three nodes running). False after `timeout`.
  bool wait_for_meta_leader(std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;
  // The node currently leading `stream` (from $JS.API.STREAM.INFO's
  // cluster.leader), asked of any running node; nullopt when there is none
  // (election in progress, stream missing, no node answering).
  std::optional<int> stream_leader(const std::string& stream) const;
  // Waits until `stream` has a leader, other than `not_this` when given.
  std::optional<int> wait_for_stream_leader(const std::string& stream, std::optional<int> not_this = std::nullopt,
                                            std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;

  const std::filesystem::path& directory() const noexcept { return dir_; }
  std::filesystem::path store_dir(int node) const;
  // Node `node`'s log so far (for failure messages).
  std::string log(int node) const;

 private:
  struct Node {
    int port = 0;          // client port
    int cluster_port = 0;  // route port
    std::unique_ptr<ChildProcess> process;
    bool frozen = false;
  };

  void start_node(int node);
  // Waits up to `timeout` for node `node` to exit after a signal, then SIGKILLs it.
  void wait_exit(int node, std::chrono::milliseconds timeout);
  void write_config(int node) const;
  std::filesystem::path config_path(int node) const;
  std::filesystem::path log_path(int node) const;
  // Sends a request to `subject` on the first running node that answers; empty on failure.
  std::string request(const std::string& subject, const std::string& body,
                      std::chrono::milliseconds timeout) const;
  const Node& at(int node) const;
  Node& at(int node);

  NatsClusterOptions options_;
  std::filesystem::path dir_;
  std::string binary_;
  std::array<Node, kNodes> nodes_{};
};

}  // namespace catga::test
