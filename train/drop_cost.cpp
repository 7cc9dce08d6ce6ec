#include "train/drop_cost.h"

#include <map>

#include "autograd/tape.h"
#include "moe/moe_probe.h"

namespace mt::train {
namespace {

// Rescues the sample of one layer's dropped assignments (rescue_layer >= 0), or only notes each
// MoE layer's sample size (rescue_layer < 0: the forward as trained).
class DropCostProbe final : public moe::MoeProbe {
 public:
  DropCostProbe(int64_t samples, int64_t rescue_layer) : samples_(samples), rescue_layer_(rescue_layer) {}
  const moe::Routing* on_routing(int64_t layer, const moe::Routing& computed) override {
    std::vector<size_t> sample = moe::sample_dropped(computed, samples_);
    sample_sizes_[layer] = int64_t(sample.size());
    if (layer != rescue_layer_) return nullptr;
    rescued_ = moe::with_rescued(computed, sample);
    return &rescued_;
  }
  const std::map<int64_t, int64_t>& sample_sizes() const { return sample_sizes_; }

 private:
  int64_t samples_, rescue_layer_;
  std::map<int64_t, int64_t> sample_sizes_;
  moe::Routing rescued_;
};

}  // namespace

std::vector<nn::LayerLoadStats> measure_drop_cost(const nn::GptModel& model, const Tensor& tokens, const Tensor& labels,
                                                  const Tensor& loss_mask, nn::ForwardMode mode, int64_t samples,
                                                  parallel::Communicator* data_parallel) {
  NoGradGuard no_grad;
  mode.loss_grad = 0;
  double positions = loss_mask.defined() ? 0.0 : double(labels.numel());
  if (loss_mask.defined())
    for (double w : loss_mask.to_double_vector()) positions += w;
  auto lm_loss = [&](moe::MoeProbe& probe) {
    moe::MoeProbeScope scope(&probe);
    return model.loss_parts(tokens, labels, loss_mask, mode).lm_loss;
  };
  DropCostProbe as_trained(samples, -1);
  double trained_loss = lm_loss(as_trained);
  std::vector<double> sizes;  // this rank's sample per MoE layer, in layer order
  for (const auto& [layer, n] : as_trained.sample_sizes()) sizes.push_back(double(n));
  std::vector<double> group_sizes = parallel::sum_over_ranks(sizes, data_parallel);
  std::vector<double> cost_sums;
  size_t i = 0;
  for (const auto& [layer, n] : as_trained.sample_sizes()) {
    double cost = 0;
    if (group_sizes[i++] > 0) {  // a collective forward when any rank of the group dropped here
      DropCostProbe rescue(samples, layer);
      double rescued_loss = lm_loss(rescue);
      if (n > 0) cost = (trained_loss - rescued_loss) * positions;
    }
    cost_sums.push_back(cost);
  }
  cost_sums = parallel::sum_over_ranks(cost_sums, data_parallel);
  std::vector<nn::LayerLoadStats> out;
  i = 0;
  for (const auto& [layer, n] : as_trained.sample_sizes()) {
    nn::LayerLoadStats l;
    l.is_moe = true;
    l.layer = layer;
    l.has_drop_cost = true;
    l.drop_cost_sum = cost_sums[i];
    l.drop_cost_tokens = int64_t(group_sizes[i]);
    ++i;
    out.push_back(l);
  }
  return out;
}

}  // namespace mt::train
