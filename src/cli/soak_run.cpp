#include "cli/soak_run.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bench/completion_call.h"
#include "bench/request_record.h"
#include "bench/server_sampler.h"
#include "bench/server_url.h"
#include "cli/server_launcher.h"
#include "core/error.h"
#include "core/units.h"

namespace morphserve::cli {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;
using namespace std::chrono_literals;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// VmRSS of a process, from /proc; 0 when it cannot be read (the process is gone).
uint64_t rss_bytes(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// The server as the soak watches it: /morph and the /metrics series, one poll at a time.
class ServerView {
 public:
  explicit ServerView(const std::string& url) : url_(bench::parse_server_url(url)) {}

  std::optional<json> morph() const { return get("/morph"); }

  std::map<std::string, double> metrics() const {
    auto client = bench::make_client(url_, 5s);
    auto reply = client->Get(url_.base_path + "/metrics");
    if (!reply || reply->status != 200) return {};
    return bench::server_values_from_metrics(reply->body);
  }

  bool healthy() const {
    auto client = bench::make_client(url_, 5s);
    auto reply = client->Get(url_.base_path + "/health");
    return reply && reply->status == 200;
  }

  const bench::ServerUrl& url() const { return url_; }

 private:
  std::optional<json> get(const std::string& path) const {
    auto client = bench::make_client(url_, 5s);
    const bench::JsonReply reply = bench::get_json(*client, url_, path);
    if (reply.status != 200) return std::nullopt;
    return reply.json();
  }

  bench::ServerUrl url_;
};

int quantized_layers(const json& morph) {
  int n = 0;
  for (const json& layer : morph.at("layers")) n += layer.at("precision") != layer.at("full_precision") ? 1 : 0;
  return n;
}

// Requests of random shape: a text prompt of whole words, a completion or chat, streamed or not,
// and, for a fraction, a client that hangs up after a random moment.
struct SoakRequest {
  bench::CompletionCall call;
  bool hangs_up = false;
};

SoakRequest random_request(std::mt19937_64& rng, double disconnect_fraction) {
  static const std::vector<std::string> kWords = {"the", "cat", "sat", "on", "a", "mat", "while", "morning",
                                                  "light", "came", "through", "old", "window", "and", "birds",
                                                  "sang", "softly", "outside", "garden", "river"};
  std::uniform_int_distribution<int> words(3, 20), word(0, static_cast<int>(kWords.size()) - 1), tokens(8, 64);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::string text;
  for (int i = words(rng); i > 0; --i) text += (text.empty() ? "" : " ") + kWords[static_cast<size_t>(word(rng))];
  SoakRequest r;
  const bool chat = unit(rng) < 0.3;
  const bool stream = unit(rng) < 0.7;
  json body = {{"max_tokens", tokens(rng)}, {"stream", stream}, {"temperature", 0.8}, {"seed", rng() % 1000}};
  if (chat) {
    body["messages"] = json::array({{{"role", "user"}, {"content", text}}});
    r.call.path = "/v1/chat/completions";
    r.call.chat = true;
  } else {
    body["prompt"] = text;
  }
  r.call.body = body.dump();
  r.hangs_up = unit(rng) < disconnect_fraction;
  // A client that hangs up does it by timing out: at once, mid-prefill or mid-stream.
  r.call.timeout_seconds = r.hangs_up ? 0.02 + 0.5 * unit(rng) : 120.0;
  return r;
}

// Whether a hang-up client's request ended because its client gave up, not because the server did:
// the transport broke off (httplib reports a socket read that hit the deadline as "read failed",
// the client's own clock as "timed out") no earlier than the client's deadline.
bool ended_by_its_deadline(const SoakRequest& request, const bench::RequestRecord& record) {
  if (record.error.rfind("timed out", 0) == 0) return true;
  const bool transport = record.http_status == 0 || record.error.rfind("stream broken", 0) == 0;
  return transport && record.end_seconds - record.send_seconds >= 0.9 * request.call.timeout_seconds;
}

// What the burst's clients saw, shared between them.
struct BurstTally {
  std::mutex mutex;
  int64_t requests = 0, completed = 0, refused = 0, disconnected = 0, failed = 0;
  std::set<std::string> failures;  // distinct messages, for the report

  void add(const SoakRequest& request, const bench::RequestRecord& record) {
    std::lock_guard lock(mutex);
    ++requests;
    if (record.ok()) {
      ++completed;
    } else if (record.http_status == 429 || record.http_status == 503) {
      ++refused;
    } else if (request.hangs_up && ended_by_its_deadline(request, record)) {
      ++disconnected;
    } else {
      ++failed;
      if (failures.size() < 8) failures.insert(record.error.empty() ? fmt::format("HTTP {}", record.http_status) : record.error);
    }
  }
};

void run_burst(const bench::ServerUrl& url, const SoakOptions& o, int cycle, BurstTally& tally) {
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.burst_seconds));
  std::vector<std::thread> clients;
  for (int c = 0; c < o.clients; ++c) {
    clients.emplace_back([&, c] {
      std::mt19937_64 rng(o.seed * 1'000'003 + static_cast<uint64_t>(cycle) * 1009 + static_cast<uint64_t>(c));
      const auto origin = Clock::now();
      while (Clock::now() < end) {
        const SoakRequest request = random_request(rng, o.disconnect_fraction);
        bench::RequestRecord record;
        bench::run_completion(url, "", request.call, origin, record);
        tally.add(request, record);
      }
    });
  }
  for (std::thread& t : clients) t.join();
}

// Samples /morph and RSS while a phase runs, checking what must hold in every sample.
class PhaseMonitor {
 public:
  PhaseMonitor(const ServerView& view, pid_t pid, int64_t base_blocks, SoakCycle& cycle)
      : view_(view), pid_(pid), base_blocks_(base_blocks), cycle_(cycle) {
    thread_ = std::thread([this] { loop(); });
  }
  ~PhaseMonitor() { stop(); }
  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }

 private:
  void loop() {
    while (!stop_.load()) {
      sample();
      std::this_thread::sleep_for(50ms);
    }
    sample();
  }
  void sample() {
    cycle_.max_rss_bytes = std::max(cycle_.max_rss_bytes, rss_bytes(pid_));
    const std::optional<json> m = view_.morph();
    if (!m) return;
    ++cycle_.samples;
    cycle_.peak_quantized_layers = std::max(cycle_.peak_quantized_layers, quantized_layers(*m));
    // Conservation: the pool holds its base blocks plus exactly what the layer regions lend it,
    // and no more blocks are in use or free than it holds (free blocks of a segment a restore
    // drains are neither).
    const json& kv = m->at("kv");
    const int64_t total = kv.at("blocks_total"), used = kv.at("blocks_used"), free = kv.at("blocks_free");
    int64_t lent = 0, used_in_segments = 0;
    for (const json& layer : m->at("layers")) {
      for (const json& segment : layer.at("segments")) {
        lent += segment.at("blocks").get<int64_t>();
        used_in_segments += segment.at("used_blocks").get<int64_t>();
      }
    }
    cycle_.peak_kv_blocks = std::max(cycle_.peak_kv_blocks, total);
    if ((total != base_blocks_ + lent || used + free > total || used_in_segments > used || used < 0 || free < 0) &&
        !reported_blocks_) {
      cycle_.problems.push_back(fmt::format("KV blocks not conserved: {} total for {} base + {} lent; {} used ({} in "
                                            "lent segments), {} free",
                                            total, base_blocks_, lent, used, used_in_segments, free));
      reported_blocks_ = true;
    }
    const uint64_t budget = m->at("budget").at("bytes"), in_use = m->at("budget").at("used");
    if (in_use > budget && !reported_budget_) {
      cycle_.problems.push_back(fmt::format("the ledger holds {} of a {} budget", format_size(in_use), format_size(budget)));
      reported_budget_ = true;
    }
  }

  const ServerView& view_;
  pid_t pid_;
  int64_t base_blocks_;
  SoakCycle& cycle_;
  std::atomic<bool> stop_{false};
  bool reported_blocks_ = false, reported_budget_ = false;
  std::thread thread_;
};

// What keeps the server from being idle, or "" once it is: no request running or waiting, no KV
// block used, every layer at full precision, no swap in flight, the pool at its base size.
std::string not_idle_because(const ServerView& view, int64_t base_blocks) {
  const std::optional<json> m = view.morph();
  if (!m) return "GET /morph does not answer";
  const auto metrics = view.metrics();
  auto value = [&](const char* key) { auto it = metrics.find(key); return it == metrics.end() ? -1.0 : it->second; };
  std::vector<std::string> why;
  if (value("num_requests_running") != 0) why.push_back(fmt::format("{} running", value("num_requests_running")));
  if (value("num_requests_waiting") != 0) why.push_back(fmt::format("{} waiting", value("num_requests_waiting")));
  if (value("kv_blocks_used") != 0) why.push_back(fmt::format("{} KV blocks used", value("kv_blocks_used")));
  if (const int q = quantized_layers(*m); q > 0) why.push_back(fmt::format("{} layers quantized", q));
  if (const int64_t f = m->at("swaps").at("in_flight"); f > 0) why.push_back(fmt::format("{} swaps in flight", f));
  if (const int64_t t = m->at("kv").at("blocks_total"); t != base_blocks) {
    why.push_back(fmt::format("{} KV blocks instead of the base {}", t, base_blocks));
  }
  std::string text;
  for (const std::string& w : why) text += (text.empty() ? "" : ", ") + w;
  return text;
}

}  // namespace

bool SoakReport::passed() const {
  if (!problems.empty()) return false;
  return std::all_of(cycles.begin(), cycles.end(), [](const SoakCycle& c) { return c.problems.empty(); });
}

json SoakReport::to_json() const {
  json cycles_json = json::array();
  int64_t requests = 0, failed = 0, swaps_down = 0, swaps_up = 0;
  uint64_t max_rss = 0;
  for (const SoakCycle& c : cycles) {
    requests += c.requests;
    failed += c.failed;
    swaps_down += c.swaps_down;
    swaps_up += c.swaps_up;
    max_rss = std::max(max_rss, c.max_rss_bytes);
    cycles_json.push_back({{"cycle", c.index},
                           {"requests", c.requests},
                           {"completed", c.completed},
                           {"refused", c.refused},
                           {"disconnected", c.disconnected},
                           {"failed", c.failed},
                           {"swaps_down", c.swaps_down},
                           {"swaps_up", c.swaps_up},
                           {"peak_quantized_layers", c.peak_quantized_layers},
                           {"peak_kv_blocks", c.peak_kv_blocks},
                           {"samples", c.samples},
                           {"max_rss_bytes", c.max_rss_bytes},
                           {"idle_rss_bytes", c.idle_rss_bytes},
                           {"settle_seconds", c.settle_seconds},
                           {"problems", c.problems}});
  }
  return {{"passed", passed()},
          {"seconds", seconds},
          {"cycles", std::move(cycles_json)},
          {"totals", {{"cycles", cycles.size()},
                      {"requests", requests},
                      {"failed", failed},
                      {"swaps_down", swaps_down},
                      {"swaps_up", swaps_up},
                      {"max_rss_bytes", max_rss}}},
          {"n_layers", n_layers},
          {"base_kv_blocks", base_kv_blocks},
          {"budget_bytes", budget_bytes},
          {"budget_peak_bytes", budget_peak_bytes},
          {"budget_margin_bytes", static_cast<int64_t>(budget_bytes) - static_cast<int64_t>(budget_peak_bytes)},
          {"start_rss_bytes", start_rss_bytes},
          {"rss_limit_bytes", rss_limit_bytes},
          {"problems", problems}};
}

std::string SoakReport::summary() const {
  std::string out = fmt::format("{:>5} {:>8} {:>9} {:>7} {:>8} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}\n", "cycle",
                                "requests", "completed", "refused", "hung up", "failed", "swaps d/u", "peak q/L",
                                "peak KV", "max RSS", "idle RSS", "settle");
  for (const SoakCycle& c : cycles) {
    out += fmt::format("{:>5} {:>8} {:>9} {:>7} {:>8} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6.1f}s\n", c.index,
                       c.requests, c.completed, c.refused, c.disconnected, c.failed,
                       fmt::format("{}/{}", c.swaps_down, c.swaps_up),
                       fmt::format("{}/{}", c.peak_quantized_layers, n_layers), c.peak_kv_blocks,
                       format_size(c.max_rss_bytes), format_size(c.idle_rss_bytes), c.settle_seconds);
    for (const std::string& p : c.problems) out += fmt::format("      problem: {}\n", p);
  }
  out += fmt::format("budget {} (ledger peak {}, margin {}); RSS at start {}, limit {}; base KV {} blocks\n",
                     format_size(budget_bytes), format_size(budget_peak_bytes),
                     format_size(budget_bytes - std::min(budget_bytes, budget_peak_bytes)), format_size(start_rss_bytes),
                     format_size(rss_limit_bytes), base_kv_blocks);
  for (const std::string& p : problems) out += fmt::format("problem: {}\n", p);
  out += passed() ? "soak passed\n" : "soak FAILED\n";
  return out;
}

SoakReport run_soak(const std::string& binary, const SoakOptions& o) {
  std::vector<std::string> args{"-m", o.model, "--morph", "dynamic", "--memory-budget", o.memory_budget,
                                "--max-model-len", "256", "--max-num-batched-tokens", "64", "--mode", "performance",
                                "--morph-hold", "0.5s"};
  args.insert(args.end(), o.server_args.begin(), o.server_args.end());
  const std::string log = o.server_log.empty()
                              ? (std::filesystem::temp_directory_path() / fmt::format("morphserve-soak-{}.log", ::getpid())).string()
                              : o.server_log;
  spdlog::info("soak: starting {} serve {} (its log: {})", binary, fmt::join(args, " "), log);
  ServerLauncher server(binary, args, log, 600s);
  const ServerView view(server.url());
  const auto started = Clock::now();

  SoakReport report;
  const std::optional<json> first = view.morph();
  if (!first || first->value("mode", "") != "dynamic") {
    fail<InvalidArgument>("the soak needs a server in --morph dynamic, but GET /morph answered {}",
                          first ? first->dump() : "nothing");
  }
  report.n_layers = static_cast<int>(first->at("layers").size());
  report.base_kv_blocks = first->at("kv").at("blocks_total");
  report.budget_bytes = first->at("budget").at("bytes");
  const uint64_t used_at_start = first->at("budget").at("used");
  report.start_rss_bytes = rss_bytes(server.pid());
  // Whatever the process holds beyond its budget ledger (code, the allocator, threads, the
  // replica store) is in the start RSS already; from there it may grow by the budget's headroom.
  report.rss_limit_bytes = report.start_rss_bytes + (report.budget_bytes - used_at_start) + o.rss_margin_bytes;

  int64_t swaps_down = first->at("swaps").at("down"), swaps_up = first->at("swaps").at("up");
  for (int index = 1;; ++index) {
    if (index > 1 && seconds_since(started) + o.burst_seconds > o.duration_seconds) break;
    SoakCycle& cycle = report.cycles.emplace_back();
    cycle.index = index;
    BurstTally tally;
    {
      PhaseMonitor monitor(view, server.pid(), report.base_kv_blocks, cycle);
      run_burst(view.url(), o, index, tally);
      const auto burst_end = Clock::now();
      std::string busy;
      while (!(busy = not_idle_because(view, report.base_kv_blocks)).empty() &&
             seconds_since(burst_end) < o.idle_timeout_seconds) {
        std::this_thread::sleep_for(100ms);
      }
      cycle.settle_seconds = seconds_since(burst_end);
      if (!busy.empty()) {
        cycle.problems.push_back(fmt::format("not idle {:.0f} s after the burst: {}", o.idle_timeout_seconds, busy));
      }
    }
    cycle.requests = tally.requests;
    cycle.completed = tally.completed;
    cycle.refused = tally.refused;
    cycle.disconnected = tally.disconnected;
    cycle.failed = tally.failed;
    for (const std::string& f : tally.failures) cycle.problems.push_back("a request failed: " + f);
    if (!view.healthy()) cycle.problems.push_back("GET /health is not OK after the cycle");
    cycle.idle_rss_bytes = rss_bytes(server.pid());
    if (cycle.max_rss_bytes > report.rss_limit_bytes) {
      cycle.problems.push_back(fmt::format("RSS reached {}, over the limit {}", format_size(cycle.max_rss_bytes),
                                           format_size(report.rss_limit_bytes)));
    }
    if (const std::optional<json> m = view.morph()) {
      cycle.swaps_down = m->at("swaps").at("down").get<int64_t>() - swaps_down;
      cycle.swaps_up = m->at("swaps").at("up").get<int64_t>() - swaps_up;
      swaps_down += cycle.swaps_down;
      swaps_up += cycle.swaps_up;
      report.budget_peak_bytes = m->at("budget").at("peak");
      if (!m->at("suspended").is_null()) cycle.problems.push_back("morphing suspended: " + m->at("suspended").dump());
    }
    spdlog::info("soak: cycle {}: {} requests ({} completed, {} refused, {} hung up, {} failed), swaps {}/{}, RSS {}",
                 index, cycle.requests, cycle.completed, cycle.refused, cycle.disconnected, cycle.failed,
                 cycle.swaps_down, cycle.swaps_up, format_size(cycle.idle_rss_bytes));
  }

  if (report.budget_peak_bytes > report.budget_bytes) {
    report.problems.push_back(fmt::format("the budget ledger peaked at {}, over the budget {}",
                                          format_size(report.budget_peak_bytes), format_size(report.budget_bytes)));
  }
  if (report.cycles.size() >= 2) {
    // The first cycle warms the allocator's arenas and the thread stacks up; growth after it is a leak.
    const uint64_t settled = report.cycles.front().idle_rss_bytes, last = report.cycles.back().idle_rss_bytes;
    if (last > settled + o.rss_margin_bytes) {
      report.problems.push_back(fmt::format("idle RSS grew from {} after cycle 1 to {} after cycle {}",
                                            format_size(settled), format_size(last), report.cycles.size()));
    }
  }
  int64_t total_down = 0;
  for (const SoakCycle& c : report.cycles) total_down += c.swaps_down;
  if (total_down == 0) report.problems.push_back("no layer was ever swapped: the budget is not tight enough to soak morphing");
  const std::optional<int> exit_code = server.stop(60s);
  if (exit_code != 0) {
    report.problems.push_back(exit_code ? fmt::format("the server exited with code {} on SIGTERM", *exit_code)
                                        : "the server did not exit within 60 s of SIGTERM");
  }
  report.seconds = seconds_since(started);
  return report;
}

}  // namespace morphserve::cli
