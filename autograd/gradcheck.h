// gradcheck: compares the hand-written backward of fn against central finite differences, in
// float64. The output of fn (any shape) is projected onto fixed random weights r, so one scalar
// L = sum(r * fn(inputs)) exercises every output entry; its analytic gradient comes from one
// backward with seed r, its numeric one from (L(x+eps) - L(x-eps)) / (2 eps) per input entry.
//
// Error of an entry: |analytic - numeric| / max(|analytic|, |numeric|, denom_floor). The floor
// keeps entries whose true gradient is ~0 from dividing noise by noise; with eps = 1e-5 in f64,
// the finite-difference noise is ~1e-10, far below the default tolerance 1e-6.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "autograd/variable.h"

namespace mt {

struct GradcheckOptions {
  double eps = 1e-5;
  double tolerance = 1e-6;
  double denom_floor = 1e-3;
  int64_t max_entries_per_input = -1;  // -1: every entry; otherwise a seeded sample
  uint64_t seed = 1234;
  // With sampling: draw every other entry among those whose analytic gradient is non-zero (a
  // word embedding's rows of unused tokens would otherwise fill the sample with 0 = 0).
  bool prefer_nonzero = false;
  // Called after each perturbed evaluation: false means the probe crossed a discontinuity of the
  // function (an MoE routing decision flipped), so its difference quotient means nothing: the
  // entry is skipped (and counted), not reported as an error. Unset: every probe is valid.
  std::function<bool()> probe_valid;
};

// One input's part of the check.
struct GradcheckInputReport {
  std::string name;
  int64_t checked = 0, skipped = 0;
  double max_abs_error = 0, max_rel_error = 0;
  int64_t worst_entry = -1;
  double worst_analytic = 0, worst_numeric = 0;
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0, max_rel_error = 0;
  int64_t entries_checked = 0, entries_skipped = 0;
  std::string worst;                         // "input 2 entry 17: analytic ..., numeric ..."
  std::vector<GradcheckInputReport> inputs;  // one per input that requires a gradient, in order
  std::string summary() const;
};

using GradcheckFn = std::function<Variable(const std::vector<Variable>&)>;

// Inputs that require a gradient must be f64 CPU tensors; the others are passed through.
GradcheckResult gradcheck(const GradcheckFn& fn, const std::vector<Variable>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace mt
