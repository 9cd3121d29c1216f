#pragma once
// A TCP endpoint for HAProxy's agent check (`serve --haproxy-agent-port`). HAProxy connects every
// agent-inter, reads one line and acts on it: "up 63%" (in rotation at 63% of the weight the
// configuration gives the server), "drain" (no new requests, the open ones finish: shutting down),
// "down" (out: still loading). The weight is what a least-connections balancer cannot see from
// connection counts: how much KV room is left, how long the queue is, and whether the instance
// has traded precision for that room (a morphed instance is a worse place for the next request).
#include <atomic>
#include <string>
#include <thread>

#include "server/server_state.h"

namespace morphserve {
struct EngineSnapshot;
}

namespace morphserve::server {

// What the agent knows of the instance.
struct AgentInputs {
  ServerPhase phase = ServerPhase::Loading;
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;
  int64_t num_waiting = 0;
  double precision_degradation = 0;  // MorphSummary::precision_degradation
};

// The weight in percent, 1..100: 100 × (0.25 + 0.75 × free KV share) × 1 / (1 + waiting) ×
// (1 − precision_degradation / 2). Never 0 while ready: a weight of 0 is HAProxy's drain.
int agent_weight_percent(const AgentInputs& in);
// The line sent for those inputs, newline included: "up 100%\n", "drain\n", "down\n".
std::string agent_reply(const AgentInputs& in);

class HaproxyAgent {
 public:
  explicit HaproxyAgent(const ServerState& state);
  ~HaproxyAgent();
  HaproxyAgent(const HaproxyAgent&) = delete;
  HaproxyAgent& operator=(const HaproxyAgent&) = delete;

  // Binds host:port (0: any free port), starts answering and returns the bound port. Throws Error
  // when the address cannot be bound.
  int start(const std::string& host, int port);
  // Stops answering and closes the socket. Idempotent.
  void stop();

 private:
  void serve();
  AgentInputs inputs() const;

  const ServerState& state_;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace morphserve::server
