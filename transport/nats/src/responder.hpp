#pragma once
// Responder: serves one command/query type in a queue group.

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "catga/transport.hpp"
#include "handle.hpp"
#include "transport_state.hpp"

namespace catga::nats::detail {

// A queue subscription on <prefix>.cmd.<Type> (queue group = service) read
// by one receive thread; requests are answered by `workers` threads, never
// on a nats.c thread, so handlers may block. The reply body comes from the
// handler (wire::encode_reply); a handler exception becomes an error reply.
// At most options.serve_bound() requests are held (queued or running); the
// receive thread answers one more at once with a retryable `overloaded`
// error, so a burst costs bounded memory and nobody waits for a reply that
// would come after its deadline.
class Responder : public std::enable_shared_from_this<Responder> {
 public:
  static Result<std::shared_ptr<Responder>> start(std::shared_ptr<TransportState> state, std::string type,
                                                  std::string service, RequestHandler handler);
  ~Responder();
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;

  // Unsubscribes (draining what the server already sent), answers what was
  // received, waits for running handlers. Idempotent. From one of its own
  // handlers it returns at once and a helper thread finishes the stop.
  void stop(std::chrono::milliseconds timeout) noexcept;

 private:
  Responder(std::shared_ptr<TransportState> state, std::string type, std::string service, RequestHandler handler);
  void stop_now(std::chrono::milliseconds timeout) noexcept;
  void receive_loop() noexcept;
  void worker_loop() noexcept;
  void answer(natsMsg* msg) noexcept;
  // Receive thread: counts a request in, or refuses it when the bound is reached.
  bool admit(natsMsg* msg) noexcept;
  void refuse(natsMsg* msg) noexcept;

  std::shared_ptr<TransportState> state_;
  std::string type_;
  std::string service_;
  std::string subject_;
  RequestHandler handler_;
  SubscriptionHandle sub_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<MsgHandle> queue_;
  bool exit_ = false;
  bool stopping_ = false;

  // Requests received and not yet answered. Only the receive thread adds
  // (so the bound cannot be passed); workers subtract after answering.
  std::atomic<std::size_t> in_flight_{0};
  std::size_t max_in_flight_ = 0;
  std::string overloaded_reply_;  // encoded once
  // catga_requests_served_total{outcome="ok"} and {"overloaded"}; null
  // without a registry (other outcomes are looked up when they happen).
  MetricCounter* served_ok_ = nullptr;
  MetricCounter* refused_ = nullptr;
  void count_served(std::string_view body) noexcept;
  // Receive thread only: refusals since the last warning, and when that was.
  std::uint64_t refused_unlogged_ = 0;
  std::chrono::steady_clock::time_point refused_logged_at_{};

  std::mutex stop_mu_;
  bool stopped_ = false;
  std::thread receiver_;
  std::vector<std::thread> workers_;
};

}  // namespace catga::nats::detail
