// Training in mixed precision (precision: bf16 | fp16) on the Megatron sample: the losses track
// the fp32 run's, fp16's dynamic loss scale skips overflowing steps and backs off, and an fp16 run
// resumes exactly (the loss scale is part of the checkpoint).
#include <catch2/catch.hpp>
#include <cmath>

#include "runtime/cpu/gemm_bf16.h"
#include "train/loss_scaler.h"
#include "training_fixtures.h"

using namespace trainfix;
using mt::train::LossScaler;
using mt::train::LossScalerConfig;
using mt::train::run_training;
using mt::train::TrainSummary;

namespace {

TrainConfig tiny_moe_run(const fs::path& dir) {
  TrainConfig c = tiny_run(dir);
  c.num_experts = {"4"};  // layer 2 is MoE: the gate stays f32, the experts' GEMMs are 16-bit
  c.hidden_dropout = 0;
  c.attention_dropout = 0;
  return c;
}

}  // namespace

TEST_CASE("the dynamic loss scaler backs off, waits out its hysteresis and grows", "[train][precision]") {
  LossScaler s(LossScalerConfig{0, 1024.0, 2.0, 3, 2});
  CHECK(s.scale() == 1024.0);
  CHECK_FALSE(s.update(true));  // first overflow: hysteresis 2 -> 1, the scale stays
  CHECK(s.scale() == 1024.0);
  CHECK_FALSE(s.update(true));  // second: the scale halves
  CHECK(s.scale() == 512.0);
  CHECK(s.update(false));
  CHECK(s.update(false));
  CHECK(s.scale() == 512.0);
  CHECK(s.update(false));  // a window of 3 clean steps: doubles, hysteresis refilled
  CHECK(s.scale() == 1024.0);
  CHECK(s.state().hysteresis_tracker == 2);
  for (int i = 0; i < 40; ++i) s.update(true);
  CHECK(s.scale() == 2.0);  // never below min_loss_scale

  LossScaler constant(LossScalerConfig{128.0, 1024.0, 1.0, 3, 2});
  CHECK(constant.scale() == 128.0);
  CHECK_FALSE(constant.update(true));  // an overflow is still skipped
  for (int i = 0; i < 10; ++i) CHECK(constant.update(false));
  CHECK(constant.scale() == 128.0);
}

TEST_CASE("bf16 and fp16 training track the fp32 losses", "[train][precision][slow]") {
  fs::path d32 = fresh_dir("prec_fp32");
  run_training(tiny_moe_run(d32), quiet_options());
  std::vector<double> ref = train_losses(d32 / "metrics.jsonl");
  REQUIRE(ref.size() == 20);
  for (std::string precision : {"bf16", "fp16"}) {
    DYNAMIC_SECTION(precision) {
      fs::path d = fresh_dir("prec_" + precision);
      TrainConfig c = tiny_moe_run(d);
      c.precision = precision;
      c.initial_loss_scale = 65536;
      TrainSummary s = run_training(c, quiet_options());
      REQUIRE(s.iterations == 20);
      std::vector<double> losses = train_losses(d / "metrics.jsonl");
      REQUIRE(losses.size() == 20);
      double worst = 0;
      for (size_t i = 0; i < losses.size(); ++i) worst = std::max(worst, std::fabs(losses[i] / ref[i] - 1.0));
      CAPTURE(worst, losses.back(), ref.back());
      CHECK(worst < 0.02);  // 16-bit GEMM operands: within 2% of fp32 at every iteration
      CHECK(worst > 0);     // ... and not fp32 itself
      CHECK(losses.back() < losses.front() - 1.0);
      if (precision == "fp16")
        CHECK(train_values(d / "metrics.jsonl", "loss_scale").size() == 20);
      else
        CHECK(train_values(d / "metrics.jsonl", "loss_scale").empty());
      fs::remove_all(d);
    }
  }
  fs::remove_all(d32);
}

TEST_CASE("fp16 skips overflowing steps, lowers the scale and keeps training", "[train][precision][slow]") {
  fs::path d = fresh_dir("prec_overflow");
  TrainConfig c = tiny_moe_run(d);
  c.precision = "fp16";
  c.initial_loss_scale = 1099511627776.0;  // 2^40: the scaled gradients overflow fp16 at first
  c.hysteresis = 1;
  c.train_iters = 30;
  TrainSummary s = run_training(c, quiet_options());
  REQUIRE(s.iterations == 30);
  std::vector<double> skipped = train_values(d / "metrics.jsonl", "skipped_iterations");
  std::vector<double> scale = train_values(d / "metrics.jsonl", "loss_scale");
  double total_skipped = 0;
  for (double v : skipped) total_skipped += v;
  CAPTURE(total_skipped, scale.back());
  CHECK(total_skipped >= 1);
  CHECK(total_skipped < 30);
  CHECK(scale.back() < 1099511627776.0);
  CHECK(scale.back() == 1099511627776.0 / std::pow(2.0, total_skipped));  // hysteresis 1: halves each time
  CHECK(skipped.back() == 0);                                             // trains again once the scale fits
  std::vector<double> losses = train_losses(d / "metrics.jsonl");
  CHECK(std::isfinite(losses.back()));
  CHECK(losses.back() < losses.front() - 0.5);
  fs::remove_all(d);
}

TEST_CASE("fp16 training resumes exactly, loss scale included", "[train][precision][resume][slow]") {
  fs::path straight = fresh_dir("prec_straight"), split = fresh_dir("prec_split");
  auto config = [](const fs::path& dir) {
    TrainConfig c = tiny_run(dir);
    c.precision = "fp16";
    c.initial_loss_scale = 65536;
    c.loss_scale_window = 4;  // the scale grows during the run, so the resumed run must know it
    return c;
  };
  run_training(config(straight), quiet_options());
  TrainerOptions stop = quiet_options();
  stop.stop_after_iters = 10;
  run_training(config(split), stop);
  TrainConfig second = config(split);
  second.load = second.save;
  run_training(second, quiet_options());
  REQUIRE(train_losses(straight / "metrics.jsonl") == train_losses(split / "metrics.jsonl"));
  REQUIRE(train_values(straight / "metrics.jsonl", "loss_scale") ==
          train_values(split / "metrics.jsonl", "loss_scale"));
  CHECK(train_values(straight / "metrics.jsonl", "loss_scale").back() > 65536);
  REQUIRE(slurp(straight / "ckpt" / "iter_0000020" / "model.safetensors") ==
          slurp(split / "ckpt" / "iter_0000020" / "model.safetensors"));
  fs::remove_all(straight);
  fs::remove_all(split);
}

TEST_CASE("a constant loss_scale is not replaced by a resumed checkpoint's dynamic scale",
          "[train][precision][resume][slow]") {
  fs::path d = fresh_dir("prec_constant");
  TrainConfig c = tiny_run(d);
  c.precision = "fp16";
  c.initial_loss_scale = 65536;
  TrainerOptions stop = quiet_options();
  stop.stop_after_iters = 10;
  run_training(c, stop);
  TrainConfig resumed = c;
  resumed.load = resumed.save;
  resumed.loss_scale = 128;
  run_training(resumed, quiet_options());
  std::vector<double> scale = train_values(d / "metrics.jsonl", "loss_scale");
  REQUIRE(scale.size() == 20);
  CHECK(scale[9] == 65536);
  CHECK(scale.back() == 128);
  fs::remove_all(d);
}

TEST_CASE("precision auto is bf16 where the device has bf16 units, else fp32", "[train][precision]") {
  using mt::cpu::Bf16GemmPath;
  Bf16GemmPath before = mt::cpu::bf16_gemm_path();
  TrainConfig c;
  c.precision = "auto";
  mt::cpu::set_bf16_gemm_path(Bf16GemmPath::OneDnn);  // what a CPU with AMX / AVX512-BF16 gets
  CHECK(c.compute_dtype() == mt::DType::BF16);
  mt::cpu::set_bf16_gemm_path(Bf16GemmPath::Widened);  // no units (or no oneDNN): fp32 is faster
  CHECK(c.compute_dtype() == mt::DType::F32);
  c.device = "cuda";  // tensor cores
  CHECK(c.compute_dtype() == mt::DType::BF16);
  mt::cpu::set_bf16_gemm_path(before);
}
