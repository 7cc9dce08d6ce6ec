// AdamW, one element's update, for host and device code alike (the CPU and CUDA backends run this
// one formula, in the parameter's own type T, in this order):
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  w -= lr (m/c1 / (sqrt(v/c2) + eps) + wd w)
// with decoupled weight decay (apex/Megatron's adam_w_mode) and c1 = 1 - b1^t, c2 = 1 - b2^t the
// bias corrections of step t (train/optimizer.cpp).
#pragma once

#include <cmath>

#include "runtime/rng.h"  // MT_HOST_DEVICE

namespace mt {

// One optimizer step's hyperparameters, as the caller passes them (runtime/backend.h's adamw_step).
struct AdamWArgs {
  double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0, correction1 = 1, correction2 = 1;
};

// The step's scalars in T, set once per tensor (1/c1 and 1/c2 divided in double, then rounded).
template <class T>
struct AdamWScalars {
  T b1, b2, lr, wd, eps, inv_c1, inv_c2;
  MT_HOST_DEVICE explicit AdamWScalars(const AdamWArgs& a)
      : b1(T(a.beta1)),
        b2(T(a.beta2)),
        lr(T(a.lr)),
        wd(T(a.weight_decay)),
        eps(T(a.eps)),
        inv_c1(T(1.0 / a.correction1)),
        inv_c2(T(1.0 / a.correction2)) {}
};

template <class T>
MT_HOST_DEVICE inline void adamw_update(T& w, T g, T& m, T& v, const AdamWScalars<T>& s) {
  m = s.b1 * m + (T(1) - s.b1) * g;
  v = s.b2 * v + (T(1) - s.b2) * g * g;
  w -= s.lr * ((m * s.inv_c1) / (std::sqrt(v * s.inv_c2) + s.eps) + s.wd * w);
}

}  // namespace mt
