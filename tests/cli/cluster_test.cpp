// scripts/cluster.sh: morphserve instances behind a real HAProxy on loopback, driven by
// `morphserve bench` through the balancer. Skipped when haproxy is not installed
// (scripts/install-deps.sh installs it, so CI runs these).
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "bench/fake_openai_server.h"
#include "cli/run_command.h"
#include "server/server_process.h"

namespace morphserve {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using json = nlohmann::json;
using ::morphserve::testing::closed_port;
using ::morphserve::testing::metric_value;
using ::morphserve::testing::run_morphserve;
using ::morphserve::testing::ServerProcess;

struct Instance {
  pid_t pid = 0;
  int port = 0;
};

// One cluster.sh run: its front port, its instances (from DIR/instances) and HAProxy's stats.
class Cluster {
 public:
  Cluster(int instances, const std::vector<std::string>& extra, const std::vector<std::string>& serve_args)
      : dir_(fs::path(::testing::TempDir()) / ("morphserve_cluster_" + std::to_string(::getpid()) + "_" +
                                               std::to_string(counter_++))),
        stats_port_(closed_port()) {
    fs::remove_all(dir_);
    std::vector<std::string> argv = {std::string(MORPHSERVE_SOURCE_DIR) + "/scripts/cluster.sh",
                                     "--instances", std::to_string(instances),
                                     "--port", std::to_string(closed_port()),
                                     "--stats-port", std::to_string(stats_port_),
                                     "--dir", dir_.string(),
                                     "--morphserve", MORPHSERVE_BINARY};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("--");
    argv.insert(argv.end(), serve_args.begin(), serve_args.end());
    process_ = std::make_unique<ServerProcess>(ServerProcess::Program{argv}, 180s, std::vector<std::string>{});
    std::ifstream in(dir_ / "instances");
    std::string name;
    Instance instance;
    int agent_port = 0;
    while (in >> name >> instance.pid >> instance.port >> agent_port) instances_[name] = instance;
  }
  ~Cluster() {
    process_.reset();  // SIGTERM: HAProxy stops, the instances drain
    fs::remove_all(dir_);
  }

  bool ready() const { return process_->port() > 0 && !instances_.empty(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(process_->port()); }
  int port() const { return process_->port(); }
  const Instance& instance(const std::string& name) const { return instances_.at(name); }
  std::string log() const { return process_->stderr_text(); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // HAProxy's view of a server: "status" (UP, DOWN, DRAIN...), "weight" and the rest of its CSV row.
  std::map<std::string, std::string> server_stats(const std::string& name) const {
    httplib::Client c("127.0.0.1", stats_port_);
    c.set_read_timeout(5, 0);
    c.set_url_encode(false);  // HAProxy wants the ';' as it is
    auto r = c.Get("/stats;csv");
    std::map<std::string, std::string> row;
    if (!r || r->status != 200) return row;
    std::istringstream lines(r->body);
    std::string header, line;
    std::getline(lines, header);
    auto split = [](const std::string& text) {
      std::vector<std::string> cells;
      std::stringstream s(text);
      std::string cell;
      while (std::getline(s, cell, ',')) cells.push_back(cell);
      return cells;
    };
    const std::vector<std::string> names = split(header.substr(2));  // "# pxname,svname,..."
    while (std::getline(lines, line)) {
      const std::vector<std::string> cells = split(line);
      if (cells.size() < 2 || cells[0] != "instances" || cells[1] != name) continue;
      for (size_t i = 0; i < names.size() && i < cells.size(); ++i) row[names[i]] = cells[i];
    }
    return row;
  }

  // Waits (bounded) until HAProxy reports `field` of server `name` as `value`.
  bool wait_for_stat(const std::string& name, const std::string& field, const std::string& value,
                     std::chrono::seconds timeout = 20s) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (server_stats(name)[field] == value) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  // Requests this instance finished (every finish reason), read from its own /metrics.
  double served(const std::string& name) const {
    httplib::Client c("127.0.0.1", instance(name).port);
    c.set_read_timeout(5, 0);
    auto r = c.Get("/metrics");
    if (!r || r->status != 200) return -1;
    double total = 0;
    for (const char* reason : {"stop", "length", "abort", "error"}) {
      const std::string series = "morphserve:request_success_total{model_name=\"dummy:tiny\",finished_reason=\"" +
                                 std::string(reason) + "\"}";
      total += metric_value(r->body, series);
    }
    return total;
  }

 private:
  static inline int counter_ = 0;
  fs::path dir_;
  int stats_port_;
  std::unique_ptr<ServerProcess> process_;
  std::map<std::string, Instance> instances_;
};

bool have_haproxy() { return std::system("command -v haproxy > /dev/null 2>&1") == 0; }

json bench_run(const Cluster& cluster, const std::string& args, const std::string& out) {
  fs::remove(out);
  const auto r = run_morphserve("bench --url " + cluster.url() + " " + args + " --sample-interval 0 --out " + out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(out);
  const json run = json::parse(in, nullptr, false);
  EXPECT_FALSE(run.is_discarded()) << r.err;
  if (run.is_discarded()) return json::object();
  for (const auto& record : run["records"]) EXPECT_EQ(record["error"], "") << record.dump();
  return run;
}

// Two full-precision instances and one with every layer at W4, behind HAProxy.
TEST(Cluster, ServesEverythingGivesTheMorphedInstanceLessAndDrainsWithoutLosingARequest) {
  if (!have_haproxy()) GTEST_SKIP() << "haproxy is not installed (scripts/install-deps.sh installs it)";
  Cluster cluster(3, {"--instance-args", "0", "--morph off", "--instance-args", "1", "--morph off",
                      "--instance-args", "2", "--morph static-w4"},
                  {"-m", "dummy:tiny"});
  ASSERT_TRUE(cluster.ready()) << cluster.log();
  // The agents' weights have reached HAProxy: 100% at full precision, 50% at W4.
  ASSERT_TRUE(cluster.wait_for_stat("m2", "weight", "50")) << cluster.server_stats("m2")["weight"];
  ASSERT_TRUE(cluster.wait_for_stat("m0", "weight", "100"));

  // Every request served; with 12 always open, leastconn by weight keeps about half as many of them
  // on the W4 instance as on each full-precision one. That shows in the most connections HAProxy
  // ever had open to each server (smax), not in how many each finished: a W4 instance that decodes
  // faster than the others finishes more (seen on an AVX2 machine under ASan: 35, 35, 51).
  const double before[3] = {cluster.served("m0"), cluster.served("m1"), cluster.served("m2")};
  const json run = bench_run(cluster, "--synthetic rate=2000,requests=120,prompt=16,output=64,seed=2 --max-in-flight 12",
                             cluster.path("weights.json"));
  EXPECT_EQ(run["summary"]["completed"], 120);
  EXPECT_EQ(run["summary"]["errors"], 0);
  double got[3];
  for (int i = 0; i < 3; ++i) got[i] = cluster.served("m" + std::to_string(i)) - before[i];
  EXPECT_GE(got[0] + got[1] + got[2], 120);  // and the bench's 1-token preflight
  for (int i = 0; i < 3; ++i) EXPECT_GT(got[i], 0) << "m" << i << " served nothing";
  int most_open[3];
  for (int i = 0; i < 3; ++i) most_open[i] = std::stoi("0" + cluster.server_stats("m" + std::to_string(i))["smax"]);
  EXPECT_LT(most_open[2], most_open[0]) << most_open[0] << " " << most_open[1] << " " << most_open[2];
  EXPECT_LT(most_open[2], most_open[1]) << most_open[0] << " " << most_open[1] << " " << most_open[2];

  // SIGTERM to one instance while requests keep coming: it drains (HAProxy sees "drain" and 503
  // from /health), the requests it refuses in between are retried elsewhere, none is lost.
  json drained;
  std::thread bench([&] {
    drained = bench_run(cluster, "--synthetic rate=100,requests=300,prompt=16,output=64,seed=3 --max-in-flight 12",
                        cluster.path("drain.json"));
  });
  std::this_thread::sleep_for(1s);
  ::kill(cluster.instance("m0").pid, SIGTERM);
  bench.join();
  EXPECT_EQ(drained["summary"]["completed"], 300);
  EXPECT_EQ(drained["summary"]["errors"], 0);
  EXPECT_TRUE(cluster.wait_for_stat("m0", "status", "DOWN")) << cluster.server_stats("m0")["status"];
}

// An instance killed in the middle of a stream: its client gets an error, not a hang, and the
// balancer takes the instance out; the next requests go to the one left.
TEST(Cluster, AnInstanceThatDiesMidStreamIsTakenOutAndItsClientGetsAnError) {
  if (!have_haproxy()) GTEST_SKIP() << "haproxy is not installed (scripts/install-deps.sh installs it)";
  // dummy:small on one thread streams slowly enough to be killed half-way.
  Cluster cluster(2, {}, {"-m", "dummy:small", "--morph", "off", "--max-model-len", "2048"});
  ASSERT_TRUE(cluster.ready()) << cluster.log();
  ASSERT_TRUE(cluster.wait_for_stat("m0", "status", "UP"));
  ASSERT_TRUE(cluster.wait_for_stat("m1", "status", "UP"));

  httplib::Client c("127.0.0.1", cluster.port());
  c.set_read_timeout(60, 0);
  std::string served_by;
  std::string body;
  bool killed = false;
  const std::string request = json{{"prompt", "Hello"}, {"max_tokens", 2000}, {"ignore_eos", true}, {"stream", true}}.dump();
  const auto started = std::chrono::steady_clock::now();
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = request;
  req.set_header("Content-Type", "application/json");
  req.response_handler = [&](const httplib::Response& response) {
    served_by = response.get_header_value("X-Served-By");
    return true;
  };
  req.content_receiver = [&](const char* data, size_t length, uint64_t, uint64_t) {
    body.append(data, length);
    if (!killed && body.find("data: ") != std::string::npos && !served_by.empty()) {
      ::kill(cluster.instance(served_by).pid, SIGKILL);
      killed = true;
    }
    return true;
  };
  auto result = c.send(req);
  const auto elapsed = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(killed) << "no chunk arrived; served by '" << served_by << "'";
  EXPECT_FALSE(result && body.find("data: [DONE]") != std::string::npos) << "the stream finished although its server died";
  EXPECT_LT(elapsed, 50s) << "the client waited for its read timeout instead of seeing the stream end";
  EXPECT_TRUE(cluster.wait_for_stat(served_by, "status", "DOWN")) << cluster.server_stats(served_by)["status"];

  const std::string other = served_by == "m0" ? "m1" : "m0";
  for (int i = 0; i < 4; ++i) {
    httplib::Client next("127.0.0.1", cluster.port());
    next.set_read_timeout(60, 0);
    auto r = next.Post("/v1/completions", json{{"prompt", "Hi"}, {"max_tokens", 2}}.dump(), "application/json");
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(r->get_header_value("X-Served-By"), other);
  }
}

}  // namespace
}  // namespace morphserve
