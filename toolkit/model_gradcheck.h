// `moetrain gradcheck`: the whole model of a training configuration (dense, MoE, PR-MoE, or a MoS
// student with its teacher's KD term) built in float64 at a small batch of random tokens, its
// hand-written backward compared with central finite differences on sampled entries of every
// parameter tensor (autograd/gradcheck.h).
//
// MoE routing is piecewise constant in the parameters: a probe that moves a token across a
// decision boundary (another expert wins, a capacity cut moves) makes the difference quotient
// meaningless. The unperturbed forward's routing is therefore recorded and replayed in every
// probe (moe/moe_probe.h); a probe whose own routing would have differed is skipped and counted
// instead of reported as an error.
//
// Under mpirun with a parallel layout (tensor_model_parallel_size, moe_expert_parallel_size, data
// parallelism over the remaining ranks) the batch has one slice per data-parallel rank; the
// finite differences check the single-process model on the whole batch, and the parallel model's
// synchronised gradients, gathered to global tensors, are compared with the single-process
// model's (column "parallel", relative to the tensor's largest gradient).
#pragma once

#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "runtime/tensor.h"
#include "train/config.h"

namespace mt::toolkit {

struct ModelGradcheckOptions {
  std::string params_glob;  // only parameters whose name matches (fnmatch); empty: all
  int64_t samples = 4;      // entries per parameter tensor (every other one with a non-zero gradient)
  uint64_t seed = 1234;     // tokens, labels and the sampled entries
  int64_t batch = 2, tokens = 8;
  double eps = 1e-5, tolerance = 1e-6;
  // Test only (--break-backward): "combine" or "gate_weights" makes the gradient reaching that op's
  // input 1% wrong, injected through the MoE probe hook, so the check must catch it; "" = off.
  std::string break_backward;
};

struct ModelGradcheckRow {
  std::string name;
  Shape shape;
  GradcheckInputReport report;
  double parallel_rel_error = 0;  // under mpirun: parallel vs single-process gradient
  bool ok = true;
};

struct ModelGradcheckReport {
  std::string model;  // one line: layers, hidden, experts, KD
  double loss = 0;    // the f64 loss at the unperturbed parameters
  std::vector<ModelGradcheckRow> rows;
  int64_t checked = 0, skipped = 0;
  double tolerance = 0;
  bool parallel = false;
  bool ok = true;
};

ModelGradcheckReport gradcheck_model(const train::TrainConfig& cfg, const ModelGradcheckOptions& options);

// The table `moetrain gradcheck` prints: one row per parameter (entries checked / skipped, max abs
// and relative error, worst entry with both gradients), then the verdict.
std::string format_gradcheck_report(const ModelGradcheckReport& report);

}  // namespace mt::toolkit
