#include "train/expert_bias.h"

#include <algorithm>
#include <cmath>

#include "runtime/error.h"

namespace mt::train {

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
