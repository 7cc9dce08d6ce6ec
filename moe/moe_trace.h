// `moetrain trace`'s recorder and its text layout: one MoE layer's forward intermediates and the
// gradients that reach them in the backward, captured through the layer's probe hook
// (moe/moe_probe.h). Names (the layer's, moe/moe_layer.cpp):
//   gate_logits [S,E], gate_probs [S,E] (and its two uses gate_probs.to_weights, .to_l_aux),
//   combine_weights [S,k], l_aux [], expert_inputs [N,h], expert_outputs [N,h], combined [S,h],
//   residual_mlp [S,h], residual_coefficients [S,2] (residual MoE), output [S,h].
// values[name] is the forward value; grads[name] dL/d(name), summed over backward passes.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "moe/moe_probe.h"

namespace mt::moe {

class MoeTraceRecorder final : public MoeProbe {
 public:
  explicit MoeTraceRecorder(int64_t layer) : layer_(layer) {}
  const Routing* on_routing(int64_t layer, const Routing& computed) override;
  Variable on_value(int64_t layer, const char* name, const Variable& v) override;

  bool seen() const { return seen_; }
  const Routing& routing() const { return routing_; }
  const std::map<std::string, Tensor>& values() const { return values_; }
  const std::map<std::string, Tensor>& grads() const { return grads_; }

 private:
  int64_t layer_;
  bool seen_ = false;
  Routing routing_;
  std::map<std::string, Tensor> values_, grads_;
};

// The readable layout: the routing summary, then per token (the first `tokens`) its gate logits,
// probabilities, choices (expert, slot, row of the dispatched buffer, or dropped), combine weights
// and rows; then the backward's d combine weights, dP split by branch, d gate logits; then the
// weight gradients given (name, gradient) - the gate's and the experts'. `title` heads it.
std::string format_moe_trace(const MoeTraceRecorder& rec, const std::string& title, int64_t tokens,
                             const std::vector<std::pair<std::string, Tensor>>& weight_grads);

}  // namespace mt::moe
