#include "train/global_balance.h"

#include <cmath>
#include <map>
#include <utility>

#include "autograd/tape.h"
#include "moe/moe_probe.h"
#include "runtime/error.h"

namespace mt::train {
namespace {

// Sums each MoE layer's balancing counts (ce_e x tokens) and tokens over the forwards it sees.
class BalancingCounts final : public moe::MoeProbe {
 public:
  const moe::Routing* on_routing(int64_t layer, const moe::Routing& r) override {
    std::vector<double>& counts = counts_[layer];
    counts.resize(r.aux_fraction.size(), 0.0);
    for (size_t e = 0; e < counts.size(); ++e) counts[e] += std::round(r.aux_fraction[e] * double(r.tokens));
    tokens_[layer] += double(r.tokens);
    return nullptr;
  }
  std::map<int64_t, std::vector<double>> counts_;
  std::map<int64_t, double> tokens_;
};

}  // namespace

void set_global_aux_fractions(nn::GptModel& model, const std::vector<Tensor>& tokens,
                              const std::vector<nn::ForwardMode>& modes, parallel::Communicator* data_parallel) {
  std::map<int64_t, std::vector<double>*> fractions = model.global_aux_fractions();
  if (fractions.empty()) return;
  MT_CHECK(tokens.size() == modes.size(), "global_aux_loss: ", tokens.size(), " micro-batches, ", modes.size(),
           " modes");
  clear_global_aux_fractions(model);
  BalancingCounts seen;
  {
    NoGradGuard no_grad;
    moe::MoeProbeScope scope(&seen);
    for (size_t i = 0; i < tokens.size(); ++i) model.final_hidden(tokens[i], modes[i]);
  }
  std::vector<double> flat;  // [counts of each layer..., tokens of each layer...] in layer order
  for (const auto& [layer, f] : fractions) {
    MT_CHECK(seen.counts_.count(layer), "global_aux_loss: MoE layer ", layer, " routed nothing in the counting pass");
    flat.insert(flat.end(), seen.counts_[layer].begin(), seen.counts_[layer].end());
  }
  for (const auto& [layer, f] : fractions) flat.push_back(seen.tokens_[layer]);
  flat = parallel::sum_over_ranks(std::move(flat), data_parallel);
  size_t at = 0, token_at = flat.size() - fractions.size();
  for (const auto& [layer, f] : fractions) {
    double total = flat[token_at++];
    size_t e_count = seen.counts_[layer].size();
    f->assign(flat.begin() + ptrdiff_t(at), flat.begin() + ptrdiff_t(at + e_count));
    for (double& v : *f) v /= total;
    at += e_count;
  }
}

void clear_global_aux_fractions(nn::GptModel& model) {
  for (auto& [layer, f] : model.global_aux_fractions()) f->clear();
}

}  // namespace mt::train
