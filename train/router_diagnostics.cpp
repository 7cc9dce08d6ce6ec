#include "train/router_diagnostics.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "runtime/error.h"

namespace mt::train {

void reduce_layer_loads(std::vector<nn::LayerLoadStats>& loads, parallel::Communicator* data_parallel) {
  if (!data_parallel || data_parallel->size() == 1 || loads.empty()) return;
  std::vector<double> flat;  // per layer: its expert counts, then its four per-micro-batch sums
  for (const nn::LayerLoadStats& l : loads) {
    flat.insert(flat.end(), l.expert_counts.begin(), l.expert_counts.end());
    flat.insert(flat.end(), {l.dropped, l.aux_loss, l.z_loss, l.entropy});
  }
  std::vector<double> sum = parallel::sum_over_ranks(std::move(flat), data_parallel);
  double ranks = double(data_parallel->size());
  size_t at = 0;
  for (nn::LayerLoadStats& l : loads) {
    for (int64_t& c : l.expert_counts) c = int64_t(std::llround(sum[at++]));
    for (double* v : {&l.dropped, &l.aux_loss, &l.z_loss, &l.entropy}) *v = sum[at++] / ranks;
  }
}

GateGradientSummary summarize_gate_gradients(const nn::GateGradientTerms& t) {
  auto dot = [](const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
  };
  GateGradientSummary s;
  s.lm = std::sqrt(dot(t.lm, t.lm));
  s.balance = std::sqrt(dot(t.balance, t.balance));
  s.z = std::sqrt(dot(t.z, t.z));
  s.interference = s.lm > 0 && s.balance > 0 ? dot(t.lm, t.balance) / (s.lm * s.balance) : 0.0;
  return s;
}

void record_gate_gradients(const std::map<int64_t, nn::GateGradientTerms*>& terms,
                           std::vector<nn::LayerLoadStats>& loads, parallel::Communicator* data_parallel,
                           double scale) {
  for (const auto& [layer, t] : terms) {
    std::vector<double> all = t->lm;  // one all-reduce per layer: [lm | balance | z]
    all.insert(all.end(), t->balance.begin(), t->balance.end());
    all.insert(all.end(), t->z.begin(), t->z.end());
    all = parallel::sum_over_ranks(std::move(all), data_parallel);
    size_t n = t->lm.size();
    nn::GateGradientTerms global;
    global.lm.assign(all.begin(), all.begin() + long(n));
    global.balance.assign(all.begin() + long(n), all.begin() + long(2 * n));
    global.z.assign(all.begin() + long(2 * n), all.end());
    for (auto* v : {&global.lm, &global.balance, &global.z})
      for (double& x : *v) x *= scale;
    GateGradientSummary s = summarize_gate_gradients(global);
    auto it = std::find_if(loads.begin(), loads.end(), [&](const nn::LayerLoadStats& l) { return l.layer == layer; });
    MT_CHECK(it != loads.end(), "router diagnostics: no stats of MoE layer ", layer, " in this step");
    it->has_gate_gradients = true;
    it->gate_grad_lm = s.lm;
    it->gate_grad_balance = s.balance;
    it->gate_grad_z = s.z;
    it->interference = s.interference;
    t->clear();
  }
}

}  // namespace mt::train
