#include "moe/moe_trace.h"

#include <cmath>
#include <cstdio>

#include "autograd/ops.h"
#include "moe/moe_ops.h"
#include "runtime/ops.h"

namespace mt::moe {
namespace {

// "[a, b, c, ...(+n)]" with at most `max` values, 4 significant decimals.
std::string row_str(const std::vector<double>& v, size_t start, size_t count, size_t max = 8) {
  std::string out = "[";
  char buf[32];
  for (size_t i = 0; i < count && i < max; ++i) {
    std::snprintf(buf, sizeof buf, "%s%.4f", i ? ", " : "", v[start + i]);
    out += buf;
  }
  if (count > max) out += ", ...(+" + std::to_string(count - max) + ")";
  return out + "]";
}

double norm(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

}  // namespace

const Routing* MoeTraceRecorder::on_routing(int64_t layer, const Routing& computed) {
  if (layer == layer_) routing_ = computed;
  return nullptr;
}

Variable MoeTraceRecorder::on_value(int64_t layer, const char* name, const Variable& v) {
  if (layer != layer_) return v;
  seen_ = true;
  std::string key = name;
  values_[key] = v.value().to(Device::cpu()).to(DType::F64);
  if (!v.requires_grad()) return v;
  return ag::observe(v, [this, key](const Tensor& dy) {
    Tensor g = dy.to(Device::cpu()).to(DType::F64);
    auto it = grads_.find(key);
    if (it == grads_.end())
      grads_[key] = g.clone();
    else
      ops::add_(it->second, g);
  });
}

std::string format_moe_trace(const MoeTraceRecorder& rec, const std::string& title, int64_t tokens,
                             const std::vector<std::pair<std::string, Tensor>>& weight_grads) {
  const Routing& r = rec.routing();
  auto val = [&](const char* n) {
    auto it = rec.values().find(n);
    return it == rec.values().end() ? std::vector<double>() : it->second.to_double_vector();
  };
  auto grad = [&](const char* n) {
    auto it = rec.grads().find(n);
    return it == rec.grads().end() ? std::vector<double>() : it->second.to_double_vector();
  };
  int64_t s = r.tokens, e_count = r.experts, k = r.k;
  int64_t h = rec.values().count("output") ? rec.values().at("output").size(1) : 0;
  std::vector<int64_t> pos = dispatch_positions(r);
  std::string out = title + "\n";
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "  %lld tokens, %lld experts, top-%lld, capacity %lld per expert; %lld of %lld assignments kept "
                "(%.1f%% dropped)\n",
                (long long)s, (long long)e_count, (long long)k, (long long)r.capacity, (long long)r.num_kept(),
                (long long)(s * k), 100.0 * r.dropped_fraction());
  out += buf;
  out += "  per expert (assigned -> kept):";
  for (int64_t e = 0; e < e_count; ++e) {
    std::snprintf(buf, sizeof buf, " e%lld %lld->%lld", (long long)e, (long long)r.assigned[size_t(e)],
                  (long long)r.kept[size_t(e)]);
    out += buf;
  }
  std::vector<double> aux = val("l_aux");
  std::string fractions;
  for (int64_t e = 0; e < e_count; ++e) {
    std::snprintf(buf, sizeof buf, "%s%.4f", e ? ", " : "", r.aux_fraction[size_t(e)]);
    fractions += buf;
  }
  std::snprintf(buf, sizeof buf, "\n  l_aux = %.4f (= %g x sum_e me_e ce_e; ce = [%s])\n", aux.empty() ? 0.0 : aux[0],
                r.aux_scale, fractions.c_str());
  out += buf;

  std::vector<double> logits = val("gate_logits"), probs = val("gate_probs"), w = val("combine_weights");
  std::vector<double> xin = val("expert_inputs"), xout = val("expert_outputs"), y = val("output");
  std::vector<double> coeff = val("residual_coefficients");
  int64_t shown = std::min(tokens, s);
  out += "\nforward (the first " + std::to_string(shown) + " tokens)\n";
  for (int64_t t = 0; t < shown; ++t) {
    std::snprintf(buf, sizeof buf, "  token %lld\n", (long long)t);
    out += buf;
    out += "    gate logits     " + row_str(logits, size_t(t * e_count), size_t(e_count)) + "\n";
    out += "    probabilities   " + row_str(probs, size_t(t * e_count), size_t(e_count)) + "\n";
    for (int64_t j = 0; j < k; ++j) {
      size_t a = size_t(t * k + j);
      int32_t e = r.expert[a];
      if (r.slot[a] < 0) {
        std::snprintf(buf, sizeof buf, "    choice %lld        expert %d (P %.4f): dropped (over capacity %lld)\n",
                      (long long)j + 1, e, probs[size_t(t * e_count + e)], (long long)r.capacity);
        out += buf;
        continue;
      }
      std::snprintf(buf, sizeof buf,
                    "    choice %lld        expert %d (P %.4f): slot %d, row %lld of the dispatched buffer, "
                    "combine weight %.4f\n",
                    (long long)j + 1, e, probs[size_t(t * e_count + e)], r.slot[a], (long long)pos[a], w[a]);
      out += buf;
      out += "      expert input  " + row_str(xin, size_t(pos[a] * h), size_t(h)) + "\n";
      out += "      expert output " + row_str(xout, size_t(pos[a] * h), size_t(h)) + "\n";
    }
    if (!coeff.empty()) {
      std::snprintf(buf, sizeof buf, "    residual mix    a %.4f (MoE), b %.4f (dense MLP)\n", coeff[size_t(2 * t)],
                    coeff[size_t(2 * t + 1)]);
      out += buf;
    }
    out += "    layer output  " + row_str(y, size_t(t * h), size_t(h)) + "\n";
  }

  std::vector<double> dw = grad("combine_weights"), dp_w = grad("gate_probs.to_weights"),
                      dp_aux = grad("gate_probs.to_l_aux"), dp = grad("gate_probs"), dz = grad("gate_logits"),
                      daux = grad("l_aux"), dxin = grad("expert_inputs"), dxout = grad("expert_outputs");
  if (!dp.empty()) {
    std::snprintf(buf, sizeof buf, "\nbackward (dL/d...; dL/dl_aux = %.4f)\n", daux.empty() ? 0.0 : daux[0]);
    out += buf;
    for (int64_t t = 0; t < shown; ++t) {
      std::snprintf(buf, sizeof buf, "  token %lld\n", (long long)t);
      out += buf;
      if (!dw.empty()) out += "    d combine weights        " + row_str(dw, size_t(t * k), size_t(k)) + "\n";
      if (!dp_w.empty())
        out += "    d probs via the weights  " + row_str(dp_w, size_t(t * e_count), size_t(e_count)) + "\n";
      if (!dp_aux.empty())
        out += "    d probs via l_aux        " + row_str(dp_aux, size_t(t * e_count), size_t(e_count)) + "\n";
      out += "    d probabilities          " + row_str(dp, size_t(t * e_count), size_t(e_count)) + "\n";
      if (!dz.empty())
        out += "    d gate logits            " + row_str(dz, size_t(t * e_count), size_t(e_count)) + "\n";
      for (int64_t j = 0; j < k; ++j) {
        size_t a = size_t(t * k + j);
        if (pos[a] < 0 || dxout.empty()) continue;
        out += "    d expert output (row " + std::to_string(pos[a]) + ") " +
               row_str(dxout, size_t(pos[a] * h), size_t(h)) + "\n";
        if (!dxin.empty())
          out += "    d expert input  (row " + std::to_string(pos[a]) + ") " +
                 row_str(dxin, size_t(pos[a] * h), size_t(h)) + "\n";
      }
    }
  }
  if (!weight_grads.empty()) {
    out += "\nweight gradients (norm, first values)\n";
    for (const auto& [name, g] : weight_grads) {
      std::vector<double> v = g.to_double_vector();
      std::snprintf(buf, sizeof buf, "  %-44s %-10s |g| %.4e  ", name.c_str(), shape_str(g.shape()).c_str(), norm(v));
      out += buf + row_str(v, 0, v.size(), 4) + "\n";
    }
  }
  return out;
}

}  // namespace mt::moe
