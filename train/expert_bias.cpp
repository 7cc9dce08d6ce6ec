#include "train/expert_bias.h"

#include <algorithm>

#include "runtime/error.h"

namespace mt::train {

void update_expert_biases(const std::map<int64_t, std::vector<double>*>& biases,
                          const std::vector<nn::LayerLoadStats>& loads, parallel::Communicator* data_parallel,
                          double rate) {
  if (biases.empty()) return;
  // every biased layer's counts in one buffer, in layer order (the same on every rank)
  std::vector<double> counts;
  for (const auto& [layer, bias] : biases) {
    auto it = std::find_if(loads.begin(), loads.end(), [&](const nn::LayerLoadStats& l) { return l.layer == layer; });
    MT_CHECK(it != loads.end() && it->expert_counts.size() == bias->size(), "expert bias: no loads of MoE layer ",
             layer, " in this step");
    counts.insert(counts.end(), it->expert_counts.begin(), it->expert_counts.end());
  }
  if (data_parallel && data_parallel->size() > 1) {
    Tensor t = Tensor::from_vector(counts, {int64_t(counts.size())});
    data_parallel->all_reduce(t, parallel::ReduceKind::Sum);
    counts = t.to_double_vector();
  }
  size_t at = 0;
  for (const auto& [layer, bias] : biases) {
    double mean = 0;
    for (size_t e = 0; e < bias->size(); ++e) mean += counts[at + e] / double(bias->size());
    for (size_t e = 0; e < bias->size(); ++e) {
      double gap = mean - counts[at + e];
      (*bias)[e] += rate * double((gap > 0) - (gap < 0));
    }
    at += bias->size();
  }
}

}  // namespace mt::train
