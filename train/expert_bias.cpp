#include "train/expert_bias.h"

#include <algorithm>
#include <cmath>

#include "runtime/error.h"

namespace mt::train {

void sum_expert_counts(std::vector<nn::LayerLoadStats>& loads, parallel::Communicator* data_parallel) {
  if (!data_parallel || data_parallel->size() == 1 || loads.empty()) return;
  std::vector<double> counts;
  for (const nn::LayerLoadStats& l : loads) counts.insert(counts.end(), l.expert_counts.begin(), l.expert_counts.end());
  Tensor t = Tensor::from_vector(counts, {int64_t(counts.size())});
  data_parallel->all_reduce(t, parallel::ReduceKind::Sum);
  std::vector<double> sum = t.to_double_vector();
  size_t at = 0;
  for (nn::LayerLoadStats& l : loads)
    for (int64_t& c : l.expert_counts) c = int64_t(std::llround(sum[at++]));
}

void update_expert_biases(const std::map<int64_t, std::vector<double>*>& biases,
                          const std::vector<nn::LayerLoadStats>& loads, double rate) {
  for (const auto& [layer, bias] : biases) {
    auto it = std::find_if(loads.begin(), loads.end(), [&](const nn::LayerLoadStats& l) { return l.layer == layer; });
    MT_CHECK(it != loads.end() && it->expert_counts.size() == bias->size(), "expert bias: no loads of MoE layer ",
             layer, " in this step");
    double mean = 0;
    for (int64_t c : it->expert_counts) mean += double(c) / double(bias->size());
    for (size_t e = 0; e < bias->size(); ++e) {
      double gap = mean - double(it->expert_counts[e]);
      (*bias)[e] += rate * double((gap > 0) - (gap < 0));
    }
  }
}

}  // namespace mt::train
