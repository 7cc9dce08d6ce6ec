// The feed-forward sub-block of a transformer layer, pluggable: the GPT model builds one per
// layer through a factory, so a dense MLP and an MoE layer (moe/, which nn/ may not include) are
// interchangeable. A feed-forward block maps x [S, h] to y [S, h] and may add an auxiliary loss
// (MoE load balancing) and load statistics for the metrics.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/parameters.h"
#include "runtime/rng.h"

namespace mt::nn {

struct LayerLoadStats {
  bool is_moe = false;
  int64_t layer = 0;
  std::vector<int64_t> expert_counts;  // assignments per expert before dropping
  double dropped = 0, aux_loss = 0, entropy = 0;
};

struct FeedForwardOutput {
  Variable y;
  Variable aux_loss;  // undefined for dense blocks
  LayerLoadStats stats;
};

class FeedForward {
 public:
  virtual ~FeedForward() = default;
  // `key` is this layer's random stream for the micro-batch (MoE token selection).
  virtual FeedForwardOutput forward(const Variable& x, bool training, RngKey key) const = 0;
  // Matmul weights one token multiplies by (for model FLOPs): an MoE layer counts its gate and
  // top-k experts only.
  virtual int64_t active_matmul_weights() const = 0;
};

// Megatron's ParallelMLP: fc2(gelu(fc1(x))), fc1 [f,h] init N(0, std), fc2 [h,f] init N(0, out_std).
class DenseMlp final : public FeedForward {
 public:
  DenseMlp(ParameterRegistry& params, const std::string& prefix, int64_t hidden, int64_t ffn, double std,
           double out_std, RngKey init_key, DType dtype);
  FeedForwardOutput forward(const Variable& x, bool training, RngKey key) const override;
  int64_t active_matmul_weights() const override { return fc1_w_.value().numel() + fc2_w_.value().numel(); }

 private:
  Variable fc1_w_, fc1_b_, fc2_w_, fc2_b_;
};

// Builds the feed-forward block of layer `layer` (0-based), registering its parameters under
// `prefix` ("layers.<l>.mlp.").
using FeedForwardFactory =
    std::function<std::unique_ptr<FeedForward>(ParameterRegistry& params, const std::string& prefix, int64_t layer)>;

}  // namespace mt::nn
