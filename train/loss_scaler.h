// Loss scaling for fp16 training (Megatron's DynamicGradScaler / ConstantGradScaler).
// fp16 holds 2^-24 .. 65504: gradients of a language model's loss are often smaller than that,
// so the loss is multiplied by `scale` before the backward, and the gradients are divided by it
// (in f32, on the master gradients) before clipping and the update. A step whose gradients hold
// inf or NaN (the scale was too large) is skipped: no update, the scale backs off.
//   dynamic (loss_scale 0): found inf -> growth count 0; the hysteresis count drops by one and at 0
//     scale = max(scale / 2, min_scale). No inf for `window` steps in a row -> scale *= 2 and the
//     hysteresis count is refilled.
//   constant (loss_scale > 0): the scale never changes; overflowing steps are still skipped.
#pragma once

#include <cstdint>

namespace mt::train {

struct LossScalerConfig {
  double loss_scale = 0;  // > 0: constant scale
  double initial_scale = 4294967296.0, min_scale = 1.0;
  int64_t window = 1000, hysteresis = 2;
};

// What a checkpoint keeps to resume the scale exactly.
struct LossScalerState {
  double scale = 1.0;
  int64_t growth_tracker = 0, hysteresis_tracker = 0;
};

class LossScaler {
 public:
  explicit LossScaler(const LossScalerConfig& cfg);
  double scale() const { return state_.scale; }
  // After a step's gradients are known: found_inf says whether they overflowed. Returns whether the
  // optimizer may apply them (false: skip the step).
  bool update(bool found_inf);
  const LossScalerState& state() const { return state_; }
  void set_state(const LossScalerState& s) { state_ = s; }

 private:
  LossScalerConfig cfg_;
  LossScalerState state_;
};

}  // namespace mt::train
