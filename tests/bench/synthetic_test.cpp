#include "bench/synthetic.h"

#include <cmath>

#include <gtest/gtest.h>

#include "core/error.h"

namespace morphserve::bench {
namespace {

std::vector<double> gaps(const Workload& w) {
  std::vector<double> g;
  for (size_t i = 1; i < w.requests.size(); ++i) g.push_back(w.requests[i].arrival_seconds - w.requests[i - 1].arrival_seconds);
  return g;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

// Coefficient of variation of the gaps: 1 for Poisson, 1/sqrt(k) for Gamma shape k.
double cv(const std::vector<double>& v) {
  const double m = mean(v);
  double var = 0;
  for (double x : v) var += (x - m) * (x - m);
  return std::sqrt(var / static_cast<double>(v.size())) / m;
}

TEST(Synthetic, PoissonArrivalsHaveTheAskedRate) {
  SyntheticOptions o;
  o.rate = 4;
  o.requests = 20000;
  o.seed = 7;
  const Workload w = generate_synthetic(o);
  ASSERT_EQ(w.requests.size(), 20000u);
  EXPECT_EQ(w.requests.front().arrival_seconds, 0.0);
  const auto g = gaps(w);
  EXPECT_NEAR(mean(g), 0.25, 0.25 * 0.03);
  EXPECT_NEAR(cv(g), 1.0, 0.03);
  for (const auto& r : w.requests) {
    EXPECT_EQ(r.prompt_tokens, 128);
    EXPECT_EQ(r.output_tokens, 128);
  }
}

TEST(Synthetic, BurstinessShapesTheGapsButKeepsTheRate) {
  for (double k : {0.25, 0.5, 4.0}) {
    SyntheticOptions o;
    o.rate = 2;
    o.burstiness = k;
    o.requests = 40000;
    o.seed = 3;
    const auto g = gaps(generate_synthetic(o));
    EXPECT_NEAR(mean(g), 0.5, 0.5 * 0.04) << k;
    EXPECT_NEAR(cv(g), 1 / std::sqrt(k), 0.06 / std::sqrt(k)) << k;
  }
}

TEST(Synthetic, IsDeterministicForASeedAndDiffersAcrossSeeds) {
  const SyntheticOptions o = parse_synthetic_spec("synthetic:rate=4,burstiness=0.5,requests=200,prompt=128-512,output=64,seed=1");
  const Workload a = generate_synthetic(o), b = generate_synthetic(o);
  ASSERT_EQ(a.requests.size(), 200u);
  bool varied = false;
  for (size_t i = 0; i < a.requests.size(); ++i) {
    EXPECT_EQ(a.requests[i].arrival_seconds, b.requests[i].arrival_seconds);
    EXPECT_EQ(a.requests[i].prompt_tokens, b.requests[i].prompt_tokens);
    EXPECT_GE(a.requests[i].prompt_tokens, 128);
    EXPECT_LE(a.requests[i].prompt_tokens, 512);
    EXPECT_EQ(a.requests[i].output_tokens, 64);
    varied |= a.requests[i].prompt_tokens != a.requests[0].prompt_tokens;
  }
  EXPECT_TRUE(varied);
  SyntheticOptions other = o;
  other.seed = 2;
  EXPECT_NE(generate_synthetic(other).requests[1].arrival_seconds, a.requests[1].arrival_seconds);
  EXPECT_EQ(a.source, "synthetic:rate=4,burstiness=0.5,requests=200,prompt=128-512,output=64,seed=1");
}

TEST(Synthetic, DurationBoundsTheArrivals) {
  const Workload w = generate_synthetic(parse_synthetic_spec("synthetic:rate=10,duration=1m,seed=5"));
  EXPECT_NEAR(static_cast<double>(w.requests.size()), 600, 4 * std::sqrt(600.0));
  EXPECT_LT(w.requests.back().arrival_seconds, 60.0);
  // With both, whichever ends first.
  EXPECT_EQ(generate_synthetic(parse_synthetic_spec("synthetic:rate=10,duration=60,requests=50")).requests.size(), 50u);
}

TEST(Synthetic, InfiniteRateSendsEverythingAtOnce) {
  const Workload w = generate_synthetic(parse_synthetic_spec("synthetic:rate=inf,requests=5"));
  ASSERT_EQ(w.requests.size(), 5u);
  for (const auto& r : w.requests) EXPECT_EQ(r.arrival_seconds, 0.0);
}

TEST(Synthetic, SpecRoundTrips) {
  const auto o = parse_synthetic_spec("synthetic: rate=2.5, requests=10, duration=90s, prompt=5-9, output=3-4, seed=99 ");
  EXPECT_DOUBLE_EQ(o.rate, 2.5);
  EXPECT_EQ(o.requests, 10);
  EXPECT_DOUBLE_EQ(o.duration_seconds, 90);
  EXPECT_EQ(o.prompt_min, 5);
  EXPECT_EQ(o.prompt_max, 9);
  EXPECT_EQ(o.output_min, 3);
  EXPECT_EQ(o.output_max, 4);
  EXPECT_EQ(o.seed, 99u);
  const auto back = parse_synthetic_spec(to_spec(o));
  EXPECT_EQ(to_spec(back), to_spec(o));
  EXPECT_TRUE(is_synthetic_spec("synthetic:requests=1"));
  EXPECT_FALSE(is_synthetic_spec("trace.csv"));
}

TEST(Synthetic, RejectsBadSpecs) {
  for (const char* bad : {"synthetic:", "synthetic:rate=4", "synthetic:requests=10,rate=0", "synthetic:requests=10,rate=-1",
                          "synthetic:requests=10,burstiness=0", "synthetic:requests=10,prompt=0",
                          "synthetic:requests=10,prompt=9-5", "synthetic:requests=10,output=-5",
                          "synthetic:requests=10,colour=red", "synthetic:requests=ten", "synthetic:requests",
                          "synthetic:requests=-1", "synthetic:rate=inf,duration=10", "synthetic:requests=10,seed=-1",
                          "synthetic:rate=1e9,duration=1h", "poisson:rate=4"}) {
    EXPECT_THROW(parse_synthetic_spec(bad), InvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace morphserve::bench
