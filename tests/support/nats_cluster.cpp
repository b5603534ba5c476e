#include "nats_cluster.hpp"

#include <nats/nats.h>
#include <signal.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "nats_server.hpp"

namespace catga::test {
namespace {

namespace fs = std::filesystem;

// The value of "leader":"..." inside the "cluster" object of a STREAM.INFO reply.
std::string leader_in(const std::string& info) {
  const auto cluster = info.find("\"cluster\"");
  if (cluster == std::string::npos) return {};
  const std::string key = "\"leader\":\"";
  const auto at = info.find(key, cluster);
  if (at == std::string::npos) return {};
  const auto begin = at + key.size();
  const auto end = info.find('"', begin);
  return end == std::string::npos ? std::string() : info.substr(begin, end - begin);
}

}  // namespace

NatsCluster::NatsCluster(NatsClusterOptions options) : options_(std::move(options)) {
  std::string tmpl = (fs::temp_directory_path() / "catga-cluster-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp: " + std::string(std::strerror(errno)));
  dir_ = tmpl;
  binary_ = nats_server_binary(options_.binary);
  // Six distinct ports: free_loopback_port may hand out one it gave before.
  std::vector<int> taken;
  auto fresh_port = [&taken] {
    while (true) {
      const int p = free_loopback_port();
      if (std::find(taken.begin(), taken.end(), p) == taken.end()) {
        taken.push_back(p);
        return p;
      }
    }
  };
  auto choose_ports = [&] {
    for (auto& n : nodes_) {
      n.port = fresh_port();
      n.cluster_port = fresh_port();
    }
    for (int i = 0; i < kNodes; ++i) write_config(i);
  };
  choose_ports();
  if (!options_.start) return;
  // A port found free can be taken by another test before the node binds
  // it (ctest -j): start again on other ports, a few times, before failing.
  for (int attempt = 1;; ++attempt) {
    try {
      start();
      return;
    } catch (...) {
      stop();
      if (attempt < 3) {
        std::error_code ec;
        for (int i = 0; i < kNodes; ++i) fs::remove_all(store_dir(i), ec);
        choose_ports();
        continue;
      }
      std::error_code ec;
      fs::remove_all(dir_, ec);
      throw;
    }
  }
}

NatsCluster::~NatsCluster() {
  try {
    stop();
  } catch (...) {
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string NatsCluster::name(int node) { return "n" + std::to_string(node + 1); }

std::optional<int> NatsCluster::node_of(const std::string& server_name) {
  for (int i = 0; i < kNodes; ++i) {
    if (name(i) == server_name) return i;
  }
  return std::nullopt;
}

const NatsCluster::Node& NatsCluster::at(int node) const {
  if (node < 0 || node >= kNodes) throw std::out_of_range("NatsCluster: no node " + std::to_string(node));
  return nodes_[static_cast<std::size_t>(node)];
}
NatsCluster::Node& NatsCluster::at(int node) {
  return const_cast<Node&>(static_cast<const NatsCluster&>(*this).at(node));
}

std::filesystem::path NatsCluster::store_dir(int node) const { return dir_ / name(node); }
std::filesystem::path NatsCluster::config_path(int node) const { return dir_ / (name(node) + ".conf"); }
std::filesystem::path NatsCluster::log_path(int node) const { return dir_ / (name(node) + ".log"); }

std::string NatsCluster::url(int node) const { return "nats://127.0.0.1:" + std::to_string(at(node).port); }

std::vector<std::string> NatsCluster::urls() const {
  std::vector<std::string> out;
  for (int i = 0; i < kNodes; ++i) out.push_back(url(i));
  return out;
}

std::string NatsCluster::url_list() const {
  std::string out;
  for (int i = 0; i < kNodes; ++i) out += (i == 0 ? "" : ",") + url(i);
  return out;
}

bool NatsCluster::running(int node) const { return at(node).process && at(node).process->running(); }

std::string NatsCluster::log(int node) const {
  std::ifstream in(log_path(node));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void NatsCluster::write_config(int node) const {
  std::ofstream out(config_path(node));
  out << "server_name: " << name(node) << "\n"
      << "listen: 127.0.0.1:" << at(node).port << "\n"
      << "jetstream {\n  store_dir: \"" << store_dir(node).string() << "\"\n}\n"
      << "cluster {\n  name: catga_test\n  listen: 127.0.0.1:" << at(node).cluster_port << "\n"
      << "  no_advertise: true\n  routes: [\n";
  for (int i = 0; i < kNodes; ++i) {
    if (i != node) out << "    nats-route://127.0.0.1:" << at(i).cluster_port << "\n";
  }
  out << "  ]\n}\n";
}

void NatsCluster::start_node(int node) {
  Node& n = at(node);
  if (running(node)) return;
  n.process = std::make_unique<ChildProcess>(std::vector<std::string>{binary_, "-c", config_path(node).string()},
                                             log_path(node));
  n.frozen = false;

  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  auto pause = std::chrono::milliseconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!n.process->alive()) {
      n.process.reset();
      throw std::runtime_error("nats-server " + name(node) + " exited at start (" + binary_ + "):\n" + log(node));
    }
    if (loopback_port_accepts(n.port)) return;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(100));
  }
  kill(node);
  throw std::runtime_error("nats-server " + name(node) + " did not accept connections on port " +
                           std::to_string(n.port) + ":\n" + log(node));
}

void NatsCluster::start() {
  for (int i = 0; i < kNodes; ++i) start_node(i);
  if (!wait_for_meta_leader(options_.start_timeout)) {
    throw std::runtime_error("NatsCluster: no JetStream meta leader was elected; log of n1:\n" + log(0));
  }
}

void NatsCluster::wait_exit(int node, std::chrono::milliseconds timeout) {
  Node& n = at(node);
  if (!n.process->wait_exit(timeout)) n.process->kill();
  n.process.reset();
}

void NatsCluster::freeze(int node) {
  if (!running(node) || at(node).frozen) return;
  if (!at(node).process->signal(SIGSTOP)) throw std::runtime_error("SIGSTOP " + name(node) + ": " + std::strerror(errno));
  at(node).frozen = true;
}

void NatsCluster::thaw(int node) {
  if (!running(node) || !at(node).frozen) return;
  at(node).process->signal(SIGCONT);
  at(node).frozen = false;
}

void NatsCluster::stop(int node) {
  if (!running(node)) return;
  thaw(node);
  at(node).process->signal(SIGTERM);
  wait_exit(node, std::chrono::seconds(10));
}

void NatsCluster::kill(int node) {
  if (!running(node)) return;
  at(node).process->kill();
  at(node).process.reset();
}

void NatsCluster::restart(int node) {
  stop(node);
  start_node(node);
}

void NatsCluster::stop() {
  // Signal all first so the nodes go down together (no elections in between).
  for (int i = 0; i < kNodes; ++i) thaw(i);
  for (auto& n : nodes_) {
    if (n.process) n.process->signal(SIGTERM);
  }
  for (int i = 0; i < kNodes; ++i) {
    if (running(i)) wait_exit(i, std::chrono::seconds(10));
  }
}

std::string NatsCluster::request(const std::string& subject, const std::string& body,
                                 std::chrono::milliseconds timeout) const {
  for (int i = 0; i < kNodes; ++i) {
    if (!running(i)) continue;
    natsOptions* opts = nullptr;
    if (natsOptions_Create(&opts) != NATS_OK) return {};
    natsConnection* nc = nullptr;
    natsStatus s = natsOptions_SetURL(opts, url(i).c_str());
    if (s == NATS_OK) s = natsOptions_SetTimeout(opts, 2000);
    if (s == NATS_OK) s = natsOptions_SetAllowReconnect(opts, false);
    if (s == NATS_OK) s = natsConnection_Connect(&nc, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK) continue;
    natsMsg* reply = nullptr;
    s = natsConnection_Request(&reply, nc, subject.c_str(), body.data(), static_cast<int>(body.size()),
                               static_cast<std::int64_t>(timeout.count()));
    std::string out;
    if (s == NATS_OK && natsMsg_GetData(reply) != nullptr) {
      out.assign(natsMsg_GetData(reply), static_cast<std::size_t>(natsMsg_GetDataLength(reply)));
    }
    natsMsg_Destroy(reply);
    natsConnection_Destroy(nc);
    if (!out.empty()) return out;
  }
  return {};
}

bool NatsCluster::wait_for_meta_leader(std::chrono::milliseconds timeout) const {
  // Only the meta leader answers account info in a cluster; without one the
  // request times out or gets a 503 error.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string info = request("$JS.API.INFO", "", std::chrono::milliseconds(1000));
    if (!info.empty() && info.find("\"error\"") == std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // A meta leader that has not heard from every peer yet refuses R3
  // placement ("no suitable peers", 10005; seen on a loaded machine): the
  // cluster is ready once a probe R3 stream can be created.
  const std::string probe = R"({"name":"CATGA_CLUSTER_PROBE","subjects":["catga.cluster.probe"],"storage":"memory","num_replicas":3})";
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string created =
        request("$JS.API.STREAM.CREATE.CATGA_CLUSTER_PROBE", probe, std::chrono::milliseconds(2000));
    if (!created.empty() && created.find("\"error\"") == std::string::npos) {
      (void)request("$JS.API.STREAM.DELETE.CATGA_CLUSTER_PROBE", "", std::chrono::milliseconds(2000));
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return false;
}

std::optional<int> NatsCluster::stream_leader(const std::string& stream) const {
  const std::string info = request("$JS.API.STREAM.INFO." + stream, "", std::chrono::milliseconds(1000));
  if (info.empty() || info.find("\"error\"") != std::string::npos) return std::nullopt;
  return node_of(leader_in(info));
}

std::optional<int> NatsCluster::wait_for_stream_leader(const std::string& stream, std::optional<int> not_this,
                                                       std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto leader = stream_leader(stream); leader && leader != not_this && running(*leader)) return leader;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return std::nullopt;
}

}  // namespace catga::test
