#include "train/loss_scaler.h"

#include <algorithm>

#include "runtime/error.h"

namespace mt::train {

LossScaler::LossScaler(const LossScalerConfig& cfg) : cfg_(cfg) {
  MT_CHECK(cfg.loss_scale >= 0 && cfg.initial_scale > 0 && cfg.min_scale > 0 && cfg.window >= 1 && cfg.hysteresis >= 1,
           "loss scaler: loss_scale >= 0, initial_loss_scale > 0, min_loss_scale > 0, loss_scale_window >= 1 and "
           "hysteresis >= 1 expected");
  state_.scale = cfg.loss_scale > 0 ? cfg.loss_scale : cfg.initial_scale;
  state_.hysteresis_tracker = cfg.hysteresis;
}

bool LossScaler::update(bool found_inf) {
  if (cfg_.loss_scale > 0) return !found_inf;
  if (found_inf) {
    state_.growth_tracker = 0;
    state_.hysteresis_tracker -= 1;
    if (state_.hysteresis_tracker <= 0) state_.scale = std::max(state_.scale * 0.5, cfg_.min_scale);
    return false;
  }
  state_.growth_tracker += 1;
  if (state_.growth_tracker == cfg_.window) {
    state_.growth_tracker = 0;
    state_.hysteresis_tracker = cfg_.hysteresis;
    state_.scale *= 2.0;
  }
  return true;
}

}  // namespace mt::train
