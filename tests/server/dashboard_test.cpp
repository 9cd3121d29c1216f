// GET /dashboard: the page itself (self-contained, open like /metrics), and what it draws in a real
// browser: headless Chromium loads it while a burst makes the server quantize layers and lend KV
// blocks, and while the server is killed and another one starts on the same port.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "headless_chromium.h"
#include "morph_queries.h"
#include "server_process.h"

namespace morphserve::testing {
namespace {

using nlohmann::json;

// What the page has drawn, read from its DOM (not from its variables: the test checks the drawing).
constexpr const char* kDrawnState = R"js((() => {
  const q = (id) => document.getElementById(id);
  if (!q('layers') || document.readyState !== 'complete') return null;  // still loading
  const cells = [...q('layers').children];
  return {
    connection: q('connection').dataset.state,
    connection_text: q('connection').textContent,
    restarts: Number(q('restarts').dataset.restarts),
    model: q('model').textContent,
    precisions: cells.map((c) => c.dataset.precision),
    classes: cells.map((c) => c.dataset.class),
    moving: cells.filter((c) => c.dataset.moving === 'true').length,
    kv_base: Number(q('kv-base').dataset.blocks || -1),
    kv_lent: Number(q('kv-lent').dataset.blocks || -1),
    kv_used: Number(q('kv-used').dataset.blocks || -1),
    kv_lent_width: parseFloat(q('kv-lent').style.width || '0'),
    kv_total_text: q('kv-total-n').textContent,
    running: q('running').textContent,
    waiting: q('waiting').textContent,
    ttft_p50: q('ttft-p50').textContent,
    ttft_p95: q('ttft-p95').textContent,
    slo: q('slo').textContent,
    slo_lines: q('ttft-chart').querySelectorAll('line.reference').length,
    p95_lines: q('ttft-chart').querySelectorAll('polyline[data-series="p95"]').length,
    kv_points: Number(q('kv-chart').dataset.points),
    decision: q('decision').dataset.action,
    last_action: q('last-action').dataset.event,
    degradation: Number(q('degradation').dataset.value),
    resources: performance.getEntriesByType('resource').map((e) => e.name),
  };
})())js";

int count_not(const json& values, const std::string& value) {
  int n = 0;
  for (const auto& v : values) n += v != value ? 1 : 0;
  return n;
}

// Polls the drawn state until `done` holds or the timeout passes; the last state read.
template <typename Pred>
json wait_drawn(HeadlessChromium& browser, const std::string& tab, std::chrono::seconds timeout, Pred done) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  json state;
  while (std::chrono::steady_clock::now() < deadline) {
    const json now = browser.evaluate(tab, kDrawnState);
    if (!now.is_null()) {
      state = now;
      if (done(state)) return state;
    }
    std::this_thread::sleep_for(100ms);
  }
  return state;
}

#define REQUIRE_CHROMIUM(binary)                                                                              \
  const std::string binary = find_chromium();                                                                 \
  if (binary.empty()) GTEST_SKIP() << "no chromium on PATH (scripts/install-deps.sh installs Debian's); set " \
                                      "MORPHSERVE_CHROMIUM to use another"

TEST(Dashboard, IsOneSelfContainedPageOpenWithoutTheKey) {
  ServerProcess server({"-m", "dummy:tiny", "--api-key", "secret"});
  ASSERT_TRUE(server.wait_ready());
  auto c = server.client();
  auto r = c->Get("/dashboard");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/html; charset=utf-8");
  const std::string csp = r->get_header_value("Content-Security-Policy");
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("connect-src 'self'"), std::string::npos) << csp;
  EXPECT_EQ(r->body.rfind("<!DOCTYPE html>", 0), 0u);
  // Nothing that would load from elsewhere: no external scripts, styles, images or fonts.
  for (const char* loader : {"<script src", "<link", "<img", "@import", "url(", "<iframe", "@font-face"}) {
    EXPECT_EQ(r->body.find(loader), std::string::npos) << loader;
  }
  // The page's sources answer without the key too, as /metrics and /morph do for scrapers.
  EXPECT_EQ(c->Get("/morph")->status, 200);
  EXPECT_EQ(c->Get("/metrics")->status, 200);
  EXPECT_EQ(c->Get("/v1/models")->status, 401);
  auto post = c->Post("/dashboard", "", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(server.terminate(), 0);
}

TEST(Dashboard, DrawsABurstAndTheRecoveryInHeadlessChromium) {
  REQUIRE_CHROMIUM(chromium);
  // The burst of morph_burst_test: a budget whose KV holds a fraction of the load.
  ServerProcess server({"-m", "dummy:tiny", "--memory-budget", "3MiB", "--max-model-len", "256",
                        "--max-num-batched-tokens", "64", "--mode", "performance", "--morph-hold", "0.5s",
                        "--slo-ttft", "2s"});
  ASSERT_TRUE(server.wait_ready());
  const json morph_before = get_morph(server);
  const int64_t base_blocks = morph_before["kv"]["blocks_total"];

  HeadlessChromium browser(chromium);
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/dashboard";
  const std::string tab = browser.open(url);
  const json before = wait_drawn(browser, tab, 30s, [](const json& s) { return s["connection"] == "live"; });
  ASSERT_EQ(before["connection"], "live") << before.dump() << browser.log_text();
  EXPECT_EQ(before["model"], "dummy:tiny");
  EXPECT_EQ(before["precisions"], json({"f16", "f16", "f16", "f16"}));
  EXPECT_EQ(before["kv_base"], base_blocks);
  EXPECT_EQ(before["kv_lent"], 0);
  EXPECT_EQ(before["ttft_p50"], "–") << "no request yet, so no quantile";
  EXPECT_EQ(before["slo"], "2.00 s");
  EXPECT_EQ(before["slo_lines"], 1);

  std::atomic<bool> done{false};
  int peak_quantized = 0, peak_moving = 0, peak_lent = 0, peak_running = 0, peak_waiting = 0;
  double peak_lent_width = 0, peak_degradation = 0;
  bool saw_swap_down_action = false;
  std::string screenshot;
  const char* screenshot_path = std::getenv("MORPHSERVE_DASHBOARD_SCREENSHOT");
  std::thread watcher([&] {
    while (!done.load()) {
      const json s = browser.evaluate(tab, kDrawnState);
      if (s.is_null()) continue;
      const int quantized = count_not(s["precisions"], "f16");
      peak_quantized = std::max(peak_quantized, quantized);
      peak_moving = std::max(peak_moving, s["moving"].get<int>());
      peak_lent = std::max(peak_lent, s["kv_lent"].get<int>());
      peak_lent_width = std::max(peak_lent_width, s["kv_lent_width"].get<double>());
      peak_running = std::max(peak_running, std::stoi(s["running"].get<std::string>()));
      peak_waiting = std::max(peak_waiting, std::stoi(s["waiting"].get<std::string>()));
      peak_degradation = std::max(peak_degradation, s["degradation"].get<double>());
      saw_swap_down_action |= s["last_action"].get<std::string>().rfind("swap_down", 0) == 0;
      // The picture for docs/: the deepest point of the burst, once the TTFT chart has a line.
      if (screenshot_path && quantized >= peak_quantized && quantized > 1 && s["p95_lines"].get<int>() > 0 &&
          s["running"] != "0") {
        screenshot = browser.screenshot(tab);
      }
      std::this_thread::sleep_for(200ms);
    }
  });
  // A burst the page, polling once a second, has several looks at: 24 clients, each sending its
  // next request as soon as the last one is answered, for 8 s.
  constexpr int kClients = 24;
  std::vector<int> failures(kClients, 0), served(kClients, 0);
  std::vector<std::thread> clients;
  const auto burst_end = std::chrono::steady_clock::now() + 8s;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      auto c = server.client(120s);
      while (std::chrono::steady_clock::now() < burst_end) {
        const int status =
            post_json(*c, "/v1/completions",
                      json{{"prompt", "Once upon a time " + std::to_string(i)}, {"max_tokens", 150}, {"ignore_eos", true}})
                .status;
        ++(status == 200 ? served : failures)[static_cast<size_t>(i)];
      }
    });
  }
  for (auto& t : clients) t.join();
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(failures[static_cast<size_t>(i)], 0) << "client " << i;
    EXPECT_GE(served[static_cast<size_t>(i)], 1) << "client " << i;
  }

  // After the burst the page draws the restored server: full precision, base capacity, nothing lent.
  const json after = wait_drawn(browser, tab, 40s, [&](const json& s) {
    return count_not(s["precisions"], "f16") == 0 && s["kv_lent"] == 0 && s["kv_base"] == base_blocks && s["moving"] == 0 &&
           s["running"] == "0" && s["ttft_p50"] != "–";
  });
  done = true;
  watcher.join();

  EXPECT_GT(peak_quantized, 0) << "the page never drew a quantized layer";
  EXPECT_GT(peak_lent, 0) << "the page never drew lent KV blocks";
  EXPECT_GT(peak_lent_width, 0.0);
  EXPECT_GT(peak_degradation, 0.0);
  EXPECT_GE(peak_running, 1);
  EXPECT_GE(peak_waiting, 1) << "24 clients on a KV that holds a fraction of them: some must have waited";
  EXPECT_TRUE(saw_swap_down_action);
  EXPECT_EQ(count_not(after["precisions"], "f16"), 0) << after.dump();
  EXPECT_EQ(after["kv_lent"], 0) << after.dump();
  EXPECT_EQ(after["kv_base"], base_blocks);
  EXPECT_EQ(after["kv_used"], 0);
  EXPECT_EQ(after["degradation"], 0.0);
  EXPECT_NE(after["ttft_p50"], "–") << "24 requests had their first token in the last 30 s";
  EXPECT_NE(after["ttft_p95"], "–");
  EXPECT_GE(after["p95_lines"], 1);
  EXPECT_GT(after["kv_points"], 3) << "one point a second";
  EXPECT_EQ(after["last_action"].get<std::string>().rfind("restore", 0), 0u) << after.dump();
  // Everything the page loaded came from the server that served it.
  const std::string origin = "http://127.0.0.1:" + std::to_string(server.port()) + "/";
  for (const auto& resource : after["resources"]) EXPECT_EQ(resource.get<std::string>().rfind(origin, 0), 0u) << resource;

  if (screenshot_path && !screenshot.empty()) {
    std::ofstream(screenshot_path, std::ios::binary) << screenshot;
    std::printf("dashboard screenshot written to %s\n", screenshot_path);
  }
  EXPECT_EQ(server.terminate(), 0);
}

TEST(Dashboard, RidesOutAServerThatIsKilledAndStartedAgain) {
  REQUIRE_CHROMIUM(chromium);
  auto first = std::make_unique<ServerProcess>(std::vector<std::string>{"-m", "dummy:tiny"});
  ASSERT_TRUE(first->wait_ready());
  const int port = first->port();
  {
    auto c = first->client();
    ASSERT_EQ(post_json(*c, "/v1/completions", json{{"prompt", "hello"}, {"max_tokens", 4}}).status, 200);
  }
  HeadlessChromium browser(chromium);
  const std::string tab = browser.open("http://127.0.0.1:" + std::to_string(port) + "/dashboard");
  const json live = wait_drawn(browser, tab, 30s, [](const json& s) { return s["connection"] == "live"; });
  ASSERT_EQ(live["connection"], "live") << live.dump() << browser.log_text();
  EXPECT_EQ(live["precisions"].size(), 4u);

  first->signal(SIGKILL);
  first->wait_exit(10s);
  first.reset();
  const json down = wait_drawn(browser, tab, 15s, [](const json& s) { return s["connection"] == "down"; });
  EXPECT_EQ(down["connection"], "down") << down.dump();
  EXPECT_NE(down["connection_text"].get<std::string>().find("retrying"), std::string::npos) << down.dump();
  EXPECT_EQ(down["precisions"].size(), 4u) << "the last picture stays while the server is away";

  // Another server on the same port, a different model at fixed W4, slow to load: the page says
  // it is loading, then draws the new server from scratch.
  ServerProcess second(ServerProcess::Program{{morphserve_binary(), "serve", "--port", std::to_string(port), "-m",
                                               "dummy:small", "--morph", "static-w4", "--debug-load-delay", "3s"}},
                       60s, {});
  const json loading = wait_drawn(browser, tab, 15s, [](const json& s) { return s["connection"] == "loading"; });
  EXPECT_EQ(loading["connection"], "loading") << loading.dump();
  ASSERT_TRUE(second.wait_ready());
  const json again = wait_drawn(browser, tab, 15s, [](const json& s) { return s["connection"] == "live" && s["model"] == "dummy:small"; });
  ASSERT_EQ(again["connection"], "live") << again.dump();
  EXPECT_EQ(again["restarts"], 1);
  const json morph = get_morph(second);
  ASSERT_EQ(again["precisions"].size(), morph["layers"].size());
  for (const auto& c : again["classes"]) EXPECT_EQ(c, "w4") << again.dump();
  EXPECT_EQ(again["degradation"], 1.0);
  EXPECT_EQ(again["decision"], "none") << "static-w4 has no controller";
  EXPECT_EQ(second.terminate(), 0);
}

}  // namespace
}  // namespace morphserve::testing
