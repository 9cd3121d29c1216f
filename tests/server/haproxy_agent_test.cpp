// The HAProxy agent: its weight, its answers in each phase of the server's life, and a real
// server answering on --haproxy-agent-port.
#include "server/haproxy_agent.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>
#include <string>

#include <gtest/gtest.h>

#include "core/error.h"
#include "server_process.h"

namespace morphserve::server {
namespace {

using namespace std::chrono_literals;

// Connects, reads until the agent closes, returns what it said ("" when nothing came in 5 s).
std::string agent_line(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string text;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    ::send(fd, "hello\n", 6, MSG_NOSIGNAL);  // what HAProxy's agent-send would add: ignored
    char buffer[256];
    pollfd p{fd, POLLIN, 0};
    while (::poll(&p, 1, 5000) > 0) {
      const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) break;
      text.append(buffer, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return text;
}

TEST(HaproxyAgent, WeightFallsWithKvUseQueueAndPrecision) {
  AgentInputs idle{ServerPhase::Ready, 100, 0, 0, 0.0};
  EXPECT_EQ(agent_weight_percent(idle), 100);
  AgentInputs half_full = idle;
  half_full.kv_blocks_used = 50;
  EXPECT_EQ(agent_weight_percent(half_full), 63);  // 0.25 + 0.75 * 0.5
  AgentInputs full = idle;
  full.kv_blocks_used = 100;
  EXPECT_EQ(agent_weight_percent(full), 25);
  AgentInputs queued = idle;
  queued.num_waiting = 3;
  EXPECT_EQ(agent_weight_percent(queued), 25);
  AgentInputs morphed = idle;
  morphed.precision_degradation = 1.0;
  EXPECT_EQ(agent_weight_percent(morphed), 50);
  morphed.precision_degradation = 0.25;
  EXPECT_EQ(agent_weight_percent(morphed), 88);
  // Never 0 (HAProxy's drain) while ready, whatever the inputs.
  AgentInputs worst{ServerPhase::Ready, 10, 99, 1000000, 7.0};
  EXPECT_EQ(agent_weight_percent(worst), 1);
  AgentInputs no_pool{ServerPhase::Ready, 0, 0, 0, 0.0};
  EXPECT_EQ(agent_weight_percent(no_pool), 100);
}

TEST(HaproxyAgent, AnswersByPhase) {
  AgentInputs in{ServerPhase::Loading, 100, 0, 0, 0.0};
  EXPECT_EQ(agent_reply(in), "down\n");
  in.phase = ServerPhase::Ready;
  EXPECT_EQ(agent_reply(in), "up 100%\n");
  in.phase = ServerPhase::ShuttingDown;
  EXPECT_EQ(agent_reply(in), "drain\n");
}

TEST(HaproxyAgent, AnswersEveryConnectionUntilStopped) {
  ServerState state(ServedModelNames{{"m"}, {}});
  HaproxyAgent agent(state);
  const int port = agent.start("127.0.0.1", 0);
  ASSERT_GT(port, 0);
  EXPECT_EQ(agent_line(port), "down\n");
  EXPECT_EQ(agent_line(port), "down\n");
  state.begin_shutdown();
  EXPECT_EQ(agent_line(port), "drain\n");
  agent.stop();
  agent.stop();  // idempotent
  EXPECT_EQ(agent_line(port), "") << "the port is closed once stopped";
  HaproxyAgent taken(state);
  HaproxyAgent second(state);
  const int used = taken.start("127.0.0.1", 0);
  EXPECT_THROW(second.start("127.0.0.1", used), Error);
}

int agent_port_of(const testing::ServerProcess& server) {
  static const std::regex kAgent(R"(haproxy agent listening on [^:\s]+:(\d+))");
  std::smatch m;
  const std::string text = server.stderr_text();
  return std::regex_search(text, m, kAgent) ? std::stoi(m[1]) : 0;
}

// A served instance: full weight idle at full precision, half of it with every layer at W4.
TEST(HaproxyAgent, ServerReportsItsWeightOnTheAgentPort) {
  for (const auto& [mode, reply] : {std::pair{"off", "up 100%\n"}, std::pair{"static-w4", "up 50%\n"}}) {
    testing::ServerProcess server({"-m", "dummy:tiny", "--morph", mode, "--haproxy-agent-port", "0"});
    ASSERT_TRUE(server.wait_ready());
    const int port = agent_port_of(server);
    ASSERT_GT(port, 0) << server.stderr_text();
    EXPECT_EQ(agent_line(port), reply) << mode;
    EXPECT_EQ(server.terminate(), 0);
  }
}

}  // namespace
}  // namespace morphserve::server
