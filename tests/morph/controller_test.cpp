// The controller's policy on synthetic signals: pressure must persist K boundaries, each swap
// restarts the count (hysteresis), calm must hold before a restore and there must be room, the
// presets order as documented, and every pressure signal trips it on its own.
#include <gtest/gtest.h>

#include "core/error.h"
#include "morph/controller.h"

namespace morphserve {
namespace {

PressureSignals load(double t, int64_t used, int64_t total = 100) {
  PressureSignals s;
  s.now_seconds = t;
  s.kv_blocks_total = total;
  s.kv_blocks_used = used;
  s.kv_blocks_free = total - used;
  s.num_running = used > 0 ? 1 : 0;
  return s;
}

MorphCapacity room(int in_flight = 0) {
  MorphCapacity c;
  c.can_swap_down = true;
  c.can_restore = true;
  c.restore_frees_blocks = 10;
  c.swaps_in_flight = in_flight;
  c.n_layers = 8;
  return c;
}

ControllerConfig fast() {
  ControllerConfig c = ControllerConfig::preset(MorphMode::Default);
  c.smoothing_seconds = 0.001;  // follow the raw utilisation at once
  c.hold_seconds = 1.0;
  c.restore_interval_seconds = 0.5;
  return c;
}

TEST(Controller, SwapsDownOnlyAfterKConsecutivePressuredBoundaries) {
  Controller c(fast());
  const int k = c.config().pressure_iterations;
  double t = 0;
  for (int i = 1; i < k; ++i) EXPECT_EQ(c.step(load(t += 0.01, 95), room()).action, MorphAction::Hold) << i;
  const MorphDecision d = c.step(load(t += 0.01, 95), room());
  EXPECT_EQ(d.action, MorphAction::SwapDown);
  EXPECT_NE(d.reason.find("kv utilisation"), std::string::npos) << d.reason;
  // While that swap is in flight (the only slot), nothing more; once it lands and the pressure
  // lasts, the next layer goes at once.
  EXPECT_EQ(c.step(load(t += 0.01, 95), room(1)).action, MorphAction::Hold);
  EXPECT_EQ(c.step(load(t += 0.01, 95), room()).action, MorphAction::SwapDown);
}

TEST(Controller, ABreakInThePressureRestartsTheCount) {
  Controller c(fast());
  const int k = c.config().pressure_iterations;
  double t = 0;
  for (int i = 1; i < k; ++i) c.step(load(t += 0.01, 95), room());
  c.step(load(t += 0.01, 10), room());
  for (int i = 1; i < k; ++i) EXPECT_EQ(c.step(load(t += 0.01, 95), room()).action, MorphAction::Hold);
  EXPECT_EQ(c.step(load(t += 0.01, 95), room()).action, MorphAction::SwapDown);
}

TEST(Controller, NeverSwapsPastTheCapOnSwapsInFlightOrWithNothingLeft) {
  Controller c(fast());
  double t = 0;
  MorphCapacity busy = room(c.config().max_swaps_in_flight);
  MorphCapacity none = room();
  none.can_swap_down = false;
  for (int i = 0; i < 20; ++i) {
    EXPECT_NE(c.step(load(t += 0.01, 99), i % 2 ? busy : none).action, MorphAction::SwapDown);
  }
}

TEST(Controller, EachSignalIsPressureOnItsOwn) {
  auto trips = [](PressureSignals s, ControllerConfig config) {
    Controller c(config);
    MorphDecision d;
    for (int i = 0; i < config.pressure_iterations; ++i) {
      s.now_seconds += 0.01;
      d = c.step(s, room());
    }
    return d;
  };
  ControllerConfig config = fast();
  config.slo_ttft_seconds = 1.0;
  PressureSignals s = load(0, 10);
  s.num_waiting = 3;
  s.blocks_needed_by_waiting = 200;  // more than the 90 free
  EXPECT_EQ(trips(s, config).action, MorphAction::SwapDown);
  s = load(0, 10);
  s.num_waiting = 1;
  s.oldest_wait_seconds = config.queue_delay_seconds * 2;
  EXPECT_EQ(trips(s, config).action, MorphAction::SwapDown);
  s = load(0, 10);
  s.ttft_count = 1;
  s.ttft_max_seconds = 0.95;  // over 80% of the 1 s SLO
  const MorphDecision ttft = trips(s, config);
  EXPECT_EQ(ttft.action, MorphAction::SwapDown);
  EXPECT_NE(ttft.reason.find("TTFT"), std::string::npos);
  config.slo_ttft_seconds = 0;  // the signal is off without an SLO
  EXPECT_EQ(trips(s, config).action, MorphAction::Hold);
}

TEST(Controller, APreemptionIsPressure) {
  ControllerConfig config = fast();
  config.smoothing_seconds = 1.0;
  Controller c(config);
  PressureSignals s = load(0, 10);
  c.step(s, room());
  s.preemptions_total = 1;
  MorphDecision d;
  for (int i = 0; i < config.pressure_iterations; ++i) {
    s.now_seconds += 0.01;
    d = c.step(s, room());
  }
  EXPECT_EQ(d.action, MorphAction::SwapDown);
  EXPECT_NE(d.reason.find("preemption"), std::string::npos);
}

TEST(Controller, RestoresAfterCalmHoldsAndOnlyWithRoom) {
  Controller c(fast());
  double t = 0;
  c.step(load(t, 95), room());
  // Calm, but not for long enough yet.
  EXPECT_EQ(c.step(load(t += 0.1, 5), room()).action, MorphAction::Hold);
  EXPECT_EQ(c.step(load(t += 0.5, 5), room()).action, MorphAction::Hold);
  const MorphDecision d = c.step(load(t += 0.6, 5), room());
  EXPECT_EQ(d.action, MorphAction::Restore) << d.reason;
  // One restore per interval.
  EXPECT_EQ(c.step(load(t += 0.1, 5), room()).action, MorphAction::Hold);
  EXPECT_EQ(c.step(load(t += 0.5, 5), room()).action, MorphAction::Restore);
  // Not when the blocks in use would not fit under the low-water mark after the restore.
  MorphCapacity tight = room();
  tight.restore_frees_blocks = 95;
  EXPECT_EQ(c.step(load(t += 1.0, 5), tight).action, MorphAction::Hold);
}

TEST(Controller, WaitingRequestsOrUtilisationAboveLowWaterAreNotCalm) {
  Controller c(fast());
  double t = 0;
  for (int i = 0; i < 50; ++i) {
    PressureSignals s = load(t += 0.1, 60);  // above low water (0.5), below high water
    EXPECT_EQ(c.step(s, room()).action, MorphAction::Hold);
  }
}

TEST(Controller, PressureDuringARestoreAsksForTheAbort) {
  Controller c(fast());
  double t = 0;
  MorphDecision d;
  MorphCapacity restoring = room(1);
  restoring.restore_in_flight = true;
  for (int i = 0; i < c.config().pressure_iterations; ++i) d = c.step(load(t += 0.01, 99), restoring);
  EXPECT_EQ(d.action, MorphAction::AbortRestore);
}

TEST(Controller, UtilisationIsSmoothedOverTheWindow) {
  ControllerConfig config = fast();
  config.smoothing_seconds = 1.0;
  Controller c(config);
  c.step(load(0, 0), room());
  // One spike lasting 10 ms barely moves a 1 s average.
  const MorphDecision d = c.step(load(0.01, 100), room());
  EXPECT_LT(d.signals.kv_utilisation, 0.05);
  EXPECT_EQ(d.action, MorphAction::Hold);
}

TEST(Controller, PresetsOrderFromPerformanceToAccuracy) {
  const auto perf = ControllerConfig::preset(MorphMode::Performance);
  const auto def = ControllerConfig::preset(MorphMode::Default);
  const auto acc = ControllerConfig::preset(MorphMode::Accuracy);
  EXPECT_LT(perf.high_water, def.high_water);
  EXPECT_LT(def.high_water, acc.high_water);
  EXPECT_LT(perf.pressure_iterations, acc.pressure_iterations);
  EXPECT_EQ(acc.first_step, DType::Q8_0);
  EXPECT_LT(acc.max_quantized_fraction, 1.0);
  for (const auto& p : {perf, def, acc}) EXPECT_NO_THROW(p.validate());
  EXPECT_EQ(parse_morph_mode("performance"), MorphMode::Performance);
  EXPECT_FALSE(parse_morph_mode("fast"));
}

TEST(Controller, ImpossibleSettingsAreRefused) {
  ControllerConfig c = fast();
  c.low_water = 0.9;
  c.high_water = 0.8;
  EXPECT_THROW(Controller{c}, InvalidArgument);
  c = fast();
  c.pressure_iterations = 0;
  EXPECT_THROW(Controller{c}, InvalidArgument);
  c = fast();
  c.first_step = DType::F32;
  EXPECT_THROW(Controller{c}, InvalidArgument);
}

}  // namespace
}  // namespace morphserve
