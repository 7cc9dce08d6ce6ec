// The MoE ops' rows of the op table (moe/moe_ops.h), each under a routing fixed when the table is
// built (the router's decisions are constant in the op's inputs): top-1 with drops, top-2 with
// renormalised weights, top-3 dropless. The references follow the definitions with plain loops:
// the dispatched buffer is expert-major, then by slot.
#include "autograd/ops.h"
#include "moe/moe_ops.h"
#include "moe/router.h"
#include "op_cases.h"
#include "test_util.h"

using namespace mt;

namespace testops {
namespace {

Variable param(const Shape& s, DType dt, uint64_t seed, double lo = -1, double hi = 1) {
  return Variable(testutil::random(s, dt, seed, lo, hi), true);
}

// A routing of S tokens over E experts from random gate probabilities (f64, no noise, no RTS).
moe::Routing fixed_routing(int64_t tokens, int64_t experts, int64_t k, bool drop, uint64_t seed) {
  Tensor logits = testutil::random({tokens, experts}, DType::F64, seed, -2, 2);
  std::vector<double> z = logits.to_double_vector(), p(z.size());
  for (int64_t t = 0; t < tokens; ++t) {
    double sum = 0;
    for (int64_t e = 0; e < experts; ++e) sum += std::exp(z[size_t(t * experts + e)]);
    for (int64_t e = 0; e < experts; ++e) p[size_t(t * experts + e)] = std::exp(z[size_t(t * experts + e)]) / sum;
  }
  moe::RouterConfig cfg;
  cfg.num_experts = experts;
  cfg.topk = k;
  cfg.min_capacity = 1;
  cfg.drop_tokens = drop;
  cfg.use_rts = false;
  cfg.top2_2nd_expert_sampling = false;
  return moe::route(Tensor::from_vector(p, {tokens, experts}), logits, cfg, true, {});
}

// Row of assignment a in the dispatched buffer, or -1 when dropped.
int64_t row_of(const moe::Routing& r, size_t a) {
  if (r.slot[a] < 0) return -1;
  int64_t row = r.slot[a];
  for (int32_t e = 0; e < r.expert[a]; ++e) row += r.kept[size_t(e)];
  return row;
}

// w[t,j] = P[t, expert(t,j)] for kept choices (0 dropped), divided by their sum for k >= 2 (when
// normalising), times the scale.
std::vector<double> ref_gate_weights(const moe::Routing& r, const std::vector<Tensor>& in,
                                     moe::GateWeightForm form = {}) {
  std::vector<double> p = in[0].to_double_vector(), w(size_t(r.tokens * r.k), 0.0);
  for (int64_t t = 0; t < r.tokens; ++t) {
    double sum = 0;
    for (int64_t j = 0; j < r.k; ++j) {
      size_t a = size_t(t * r.k + j);
      if (r.slot[a] >= 0) w[a] = p[size_t(t * r.experts + r.expert[a])];
      sum += w[a];
    }
    if (r.k >= 2 && form.normalize)
      for (int64_t j = 0; j < r.k; ++j) w[size_t(t * r.k + j)] /= sum;
  }
  for (double& v : w) v *= form.scale;
  return w;
}

// l = aux_scale * sum_e mean_t(P[t,e]) * ce_e
std::vector<double> ref_aux_loss(const moe::Routing& r, const std::vector<Tensor>& in) {
  std::vector<double> p = in[0].to_double_vector();
  double l = 0;
  for (int64_t e = 0; e < r.experts; ++e) {
    double mean = 0;
    for (int64_t t = 0; t < r.tokens; ++t) mean += p[size_t(t * r.experts + e)] / double(r.tokens);
    l += mean * r.aux_fraction[size_t(e)];
  }
  return {r.aux_scale * l};
}

// l = mean over sequences b of sum_e f[b,e] * mean_{t in b} P[t,e], f[b,e] = E/(k T) x the
// choices of e (all k) by b's tokens
std::vector<double> ref_seq_aux_loss(const moe::Routing& r, int64_t t_len, const std::vector<Tensor>& in) {
  std::vector<double> p = in[0].to_double_vector();
  int64_t b_count = r.tokens / t_len;
  double l = 0;
  for (int64_t b = 0; b < b_count; ++b)
    for (int64_t e = 0; e < r.experts; ++e) {
      double chosen = 0, mean = 0;
      for (int64_t t = b * t_len; t < (b + 1) * t_len; ++t) {
        for (int64_t j = 0; j < r.k; ++j) chosen += r.expert[size_t(t * r.k + j)] == e ? 1.0 : 0.0;
        mean += p[size_t(t * r.experts + e)] / double(t_len);
      }
      l += double(r.experts) / double(r.k * t_len) * chosen * mean / double(b_count);
    }
  return {l};
}

// rows[row(t,j)] = x[t]
std::vector<double> ref_dispatch(const moe::Routing& r, const std::vector<Tensor>& in) {
  std::vector<double> x = in[0].to_double_vector();
  int64_t h = in[0].size(1);
  std::vector<double> rows(size_t(r.num_kept() * h), 0.0);
  for (size_t a = 0; a < r.expert.size(); ++a)
    if (int64_t row = row_of(r, a); row >= 0)
      for (int64_t c = 0; c < h; ++c) rows[size_t(row * h + c)] = x[size_t(int64_t(a) / r.k * h + c)];
  return rows;
}

// y[t] = sum_j w[t,j] rows[row(t,j)] over kept choices
std::vector<double> ref_combine(const moe::Routing& r, const std::vector<Tensor>& in) {
  std::vector<double> rows = in[0].to_double_vector(), w = in[1].to_double_vector();
  int64_t h = in[0].size(1);
  std::vector<double> y(size_t(r.tokens * h), 0.0);
  for (size_t a = 0; a < r.expert.size(); ++a)
    if (int64_t row = row_of(r, a); row >= 0)
      for (int64_t c = 0; c < h; ++c) y[size_t(int64_t(a) / r.k * h + c)] += w[a] * rows[size_t(row * h + c)];
  return y;
}

void add_routed(std::vector<OpCase>& cases, const std::string& desc, const moe::Routing& r, int64_t h) {
  int64_t s = r.tokens, e = r.experts, n = r.num_kept();
  std::string where = desc + " S=" + std::to_string(s) + " E=" + std::to_string(e) + " N=" + std::to_string(n);
  cases.push_back({"moe_gate_weights", where,
                   [=](DType dt) {
                     return std::vector<Variable>{param({s, e}, dt, 41, 0.05, 1)};
                   },
                   [r](const std::vector<Variable>& v) { return moe::gate_weights(v[0], r); },
                   [r](const std::vector<Tensor>& in) { return ref_gate_weights(r, in); }});
  // moe_router_pre_softmax (the raw top-k) with moe_router_topk_scaling_factor 2.5, and scaled
  for (moe::GateWeightForm form : {moe::GateWeightForm{false, 2.5}, moe::GateWeightForm{true, 2.5}})
    cases.push_back({"moe_gate_weights", where + (form.normalize ? " x2.5" : " raw x2.5"),
                     [=](DType dt) {
                       return std::vector<Variable>{param({s, e}, dt, 50, 0.05, 1)};
                     },
                     [r, form](const std::vector<Variable>& v) { return moe::gate_weights(v[0], r, form); },
                     [r, form](const std::vector<Tensor>& in) { return ref_gate_weights(r, in, form); }});
  cases.push_back({"moe_aux_loss", where,
                   [=](DType dt) {
                     return std::vector<Variable>{param({s, e}, dt, 42, 0.05, 1)};
                   },
                   [r](const std::vector<Variable>& v) { return moe::aux_loss(v[0], r); },
                   [r](const std::vector<Tensor>& in) { return ref_aux_loss(r, in); }});
  // global_aux_loss: fractions from elsewhere (the global batch's), not this routing's
  moe::Routing global = r;
  for (int64_t i = 0; i < e; ++i) global.aux_fraction[size_t(i)] = double((i * 7) % 5 + 1) / double(3 * e);
  cases.push_back(
      {"moe_aux_loss", where + " global fractions",
       [=](DType dt) {
         return std::vector<Variable>{param({s, e}, dt, 51, 0.05, 1)};
       },
       [global](const std::vector<Variable>& v) { return moe::aux_loss(v[0], global.aux_fraction, global.aux_scale); },
       [global](const std::vector<Tensor>& in) { return ref_aux_loss(global, in); }});
  for (int64_t t_len : {s, s % 3 == 0 ? s / 3 : s / 2})  // one sequence, and several
    if (s % t_len == 0)
      cases.push_back({"moe_seq_aux_loss", where + " T=" + std::to_string(t_len),
                       [=](DType dt) {
                         return std::vector<Variable>{param({s, e}, dt, 49, 0.05, 1)};
                       },
                       [r, t_len](const std::vector<Variable>& v) { return moe::seq_aux_loss(v[0], r, t_len); },
                       [r, t_len](const std::vector<Tensor>& in) { return ref_seq_aux_loss(r, t_len, in); }});
  cases.push_back({"moe_dispatch", where + " h=" + std::to_string(h),
                   [=](DType dt) {
                     return std::vector<Variable>{param({s, h}, dt, 43)};
                   },
                   [r](const std::vector<Variable>& v) { return moe::dispatch(v[0], r); },
                   [r](const std::vector<Tensor>& in) { return ref_dispatch(r, in); }});
  cases.push_back({"moe_combine", where + " h=" + std::to_string(h),
                   [=](DType dt) {
                     return std::vector<Variable>{param({n, h}, dt, 44), param({s, r.k}, dt, 45, 0.05, 1)};
                   },
                   [r](const std::vector<Variable>& v) { return moe::combine(v[0], v[1], r); },
                   [r](const std::vector<Tensor>& in) { return ref_combine(r, in); }});
}

}  // namespace

void add_moe_cases(std::vector<OpCase>& cases) {
  moe::Routing top1 = fixed_routing(9, 3, 1, true, 31);
  MT_CHECK(top1.num_kept() < 9, "op table: the top-1 routing was meant to drop tokens");
  add_routed(cases, "top-1 with drops", top1, 5);
  add_routed(cases, "top-2", fixed_routing(6, 4, 2, true, 32), 3);
  add_routed(cases, "top-3 dropless", fixed_routing(5, 4, 3, false, 33), 4);
  // ST-MoE's router z-loss: l = mean_t (log sum_e exp z[t,e])^2 (no routing involved)
  for (double scale : {2.0, 8.0})
    cases.push_back({"moe_router_z_loss", "z[6,4] in +-" + std::to_string(int(scale)),
                     [scale](DType dt) {
                       return std::vector<Variable>{param({6, 4}, dt, 48, -scale, scale)};
                     },
                     [](const std::vector<Variable>& v) { return moe::router_z_loss(v[0]); },
                     [](const std::vector<Tensor>& in) {
                       std::vector<double> z = in[0].to_double_vector();
                       double l = 0;
                       for (int64_t t = 0; t < 6; ++t) {
                         double sum = 0;
                         for (int64_t e = 0; e < 4; ++e) sum += std::exp(z[size_t(t * 4 + e)]);
                         l += std::log(sum) * std::log(sum) / 6.0;
                       }
                       return std::vector<double>{l};
                     }});
  // the sigmoid score function and its row normalisation (for the balancing losses)
  cases.push_back({"moe_sigmoid_scores", "z[5,4]",
                   [](DType dt) {
                     return std::vector<Variable>{param({5, 4}, dt, 52, -4, 4)};
                   },
                   [](const std::vector<Variable>& v) { return moe::sigmoid_scores(v[0]); },
                   [](const std::vector<Tensor>& in) {
                     std::vector<double> z = in[0].to_double_vector();
                     for (double& v : z) v = 1.0 / (1.0 + std::exp(-v));
                     return z;
                   }});
  cases.push_back({"moe_normalize_rows", "s[5,4]",
                   [](DType dt) {
                     return std::vector<Variable>{param({5, 4}, dt, 53, 0.05, 1)};
                   },
                   [](const std::vector<Variable>& v) { return moe::normalize_rows(v[0]); },
                   [](const std::vector<Tensor>& in) {
                     std::vector<double> s = in[0].to_double_vector();
                     for (int64_t t = 0; t < 5; ++t) {
                       double sum = 0;
                       for (int64_t e = 0; e < 4; ++e) sum += s[size_t(t * 4 + e)];
                       for (int64_t e = 0; e < 4; ++e) s[size_t(t * 4 + e)] /= sum;
                     }
                     return s;
                   }});
  // residual MoE's mixing: y[t] = x[t] * coeffs[t, col]
  for (int64_t col : {0, 1})
    cases.push_back({"moe_scale_rows", "x[5,3] coeffs[5,2] col " + std::to_string(col),
                     [](DType dt) {
                       return std::vector<Variable>{param({5, 3}, dt, 46), param({5, 2}, dt, 47)};
                     },
                     [col](const std::vector<Variable>& v) { return moe::scale_rows(v[0], v[1], col); },
                     [col](const std::vector<Tensor>& in) {
                       std::vector<double> x = in[0].to_double_vector(), c = in[1].to_double_vector(), y(15);
                       for (int64_t t = 0; t < 5; ++t)
                         for (int64_t j = 0; j < 3; ++j)
                           y[size_t(t * 3 + j)] = x[size_t(t * 3 + j)] * c[size_t(t * 2 + col)];
                       return y;
                     }});
}

}  // namespace testops
