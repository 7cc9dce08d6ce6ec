#include "moe/moe_ops.h"

#include <algorithm>
#include <cmath>

#include "autograd/tape.h"
#include "runtime/dispatch.h"
#include "runtime/ops.h"

namespace mt::moe {
namespace {

// A backward's host-computed gradient g (row-major, `shape`) added into the slot's gradient, as
// `dtype` on the gradient's device.
void add_host_gradient(const GradSlot& slot, const std::vector<double>& g, Shape shape, DType dtype) {
  Tensor& grad = slot.grad_ref();
  ops::add_(grad, Tensor::from_vector(g, std::move(shape)).to(dtype).to(grad.device()));
}

}  // namespace

std::vector<int64_t> rows_per_expert(const Routing& r) {
  return r.kept;
}

std::vector<int64_t> dispatch_positions(const Routing& r) {
  std::vector<int64_t> offset(size_t(r.experts), 0);
  for (int64_t e = 1; e < r.experts; ++e) offset[size_t(e)] = offset[size_t(e - 1)] + r.kept[size_t(e - 1)];
  std::vector<int64_t> pos(r.expert.size(), -1);
  for (size_t a = 0; a < r.expert.size(); ++a)
    if (r.slot[a] >= 0) pos[a] = offset[size_t(r.expert[a])] + r.slot[a];
  return pos;
}

// --- gate weights ------------------------------------------------------------------------------
// forward:  g[t,j] = kept(t,j) ? P[t, e(t,j)] : 0;  k = 1 (or not normalising): w = c g;
//           k >= 2: w = c g / max(sum_j g, eps)   (c: form.scale)
// backward: k = 1: dP[t,e] += c dw;  k >= 2: dg_j = c (dw_j - sum_i dw_i w_i / c) / d, then dP += dg. This is
//           the exact derivative when d = sum_j g_j > eps; under the clamp (every kept probability
//           of the token below ~1.2e-7 in sum) it is applied as well, where g / eps would give
//           dw_j / eps (a deliberate simplification: the case does not occur in practice).
Variable gate_weights(const Variable& probs, const Routing& r, GateWeightForm form) {
  require_defined("gate_weights", {{"probs", &probs}});
  const Tensor& pv = probs.value();
  MT_CHECK((pv.shape() == Shape{r.tokens, r.experts}), "gate_weights: probs ", pv.str(),
           " do not match the routing of ", r.tokens, " tokens over ", r.experts, " experts");
  constexpr double kEps = 1.1920929e-07;  // float32 epsilon, as DeepSpeed's clamp
  int64_t s = r.tokens, k = r.k, e_count = r.experts;
  bool normalize = form.normalize && k >= 2;
  double c = form.scale;
  // w holds the normalised weights before the scale (what the backward needs)
  std::vector<double> p = pv.to_double_vector(), w(size_t(s * k), 0.0), denom(size_t(s), 1.0);
  for (int64_t t = 0; t < s; ++t) {
    double sum = 0;
    for (int64_t j = 0; j < k; ++j) {
      size_t a = size_t(t * k + j);
      if (r.slot[a] >= 0) w[a] = p[size_t(t * e_count + r.expert[a])];
      sum += w[a];
    }
    if (normalize) {
      denom[size_t(t)] = std::max(sum, kEps);
      for (int64_t j = 0; j < k; ++j) w[size_t(t * k + j)] /= denom[size_t(t)];
    }
  }
  std::vector<double> scaled(w);
  for (double& v : scaled) v *= c;
  Variable out(Tensor::from_vector(scaled, {s, k}).to(pv.dtype()).to(pv.device()));
  if (any_requires_grad({&probs})) {
    record_op("gate_weights", out,
              [ps = probs.grad_slot(), r, w, denom, normalize, c, dtype = pv.dtype()](const Tensor& dout) {
                int64_t s = r.tokens, k = r.k, e_count = r.experts;
                std::vector<double> dw = dout.to_double_vector(), dp(size_t(s * e_count), 0.0);
                for (double& v : dw) v *= c;  // through the scale first
                for (int64_t t = 0; t < s; ++t) {
                  double dot = 0;
                  if (normalize)
                    for (int64_t j = 0; j < k; ++j) dot += dw[size_t(t * k + j)] * w[size_t(t * k + j)];
                  for (int64_t j = 0; j < k; ++j) {
                    size_t a = size_t(t * k + j);
                    if (r.slot[a] < 0) continue;
                    double dg = normalize ? (dw[a] - dot) / denom[size_t(t)] : dw[a];
                    dp[size_t(t * e_count + r.expert[a])] += dg;
                  }
                }
                add_host_gradient(ps, dp, {s, e_count}, dtype);
              });
  }
  return out;
}

// --- load-balancing loss -------------------------------------------------------------------------
// forward:  l = aux_scale * sum_e (1/S sum_t P[t,e]) * ce_e     (ce from the routing: constant)
// backward: dP[t,e] += dl * aux_scale * ce_e / S
Variable aux_loss(const Variable& probs, const Routing& r) {
  return aux_loss(probs, r.aux_fraction, r.aux_scale);
}

Variable aux_loss(const Variable& probs, const std::vector<double>& fractions, double scale) {
  require_defined("aux_loss", {{"probs", &probs}});
  const Tensor& pv = probs.value();
  MT_CHECK(pv.dim() == 2 && pv.size(1) == int64_t(fractions.size()), "aux_loss: probs ", pv.str(), " do not match ",
           fractions.size(), " expert fractions");
  int64_t s = pv.size(0), e_count = pv.size(1);
  std::vector<double> p = pv.to_double_vector();
  double l = 0;
  for (int64_t t = 0; t < s; ++t)
    for (int64_t e = 0; e < e_count; ++e) l += p[size_t(t * e_count + e)] * fractions[size_t(e)] / double(s);
  l *= scale;
  Variable out(Tensor::scalar(l, pv.dtype(), pv.device()));
  if (any_requires_grad({&probs})) {
    record_op("aux_loss", out, [ps = probs.grad_slot(), fractions, scale, s, dtype = pv.dtype()](const Tensor& dout) {
      double g = dout.item() * scale / double(s);
      int64_t e_count = int64_t(fractions.size());
      std::vector<double> dp(size_t(s * e_count));
      for (int64_t t = 0; t < s; ++t)
        for (int64_t e = 0; e < e_count; ++e) dp[size_t(t * e_count + e)] = g * fractions[size_t(e)];
      add_host_gradient(ps, dp, {s, e_count}, dtype);
    });
  }
  return out;
}

Variable seq_aux_loss(const Variable& probs, const Routing& r, int64_t sequence_length) {
  require_defined("seq_aux_loss", {{"probs", &probs}});
  const Tensor& pv = probs.value();
  MT_CHECK((pv.shape() == Shape{r.tokens, r.experts}), "seq_aux_loss: probs ", pv.str(), " do not match the routing");
  int64_t t_len = sequence_length, e_count = r.experts;
  MT_CHECK(t_len > 0 && r.tokens % t_len == 0, "seq_aux_loss: ", r.tokens, " tokens are not whole sequences of ",
           t_len);
  int64_t b_count = r.tokens / t_len;
  // f[b,e] = E / (k T) x choices of expert e by the tokens of sequence b (all k, before dropping)
  std::vector<double> f(size_t(b_count * e_count), 0.0);
  for (int64_t a = 0; a < r.tokens * r.k; ++a)
    f[size_t(a / r.k / t_len * e_count + r.expert[size_t(a)])] += double(e_count) / double(r.k * t_len);
  std::vector<double> p = pv.to_double_vector();
  double l = 0;
  for (int64_t t = 0; t < r.tokens; ++t)
    for (int64_t e = 0; e < e_count; ++e)
      l += f[size_t(t / t_len * e_count + e)] * p[size_t(t * e_count + e)] / double(t_len * b_count);
  Variable out(Tensor::scalar(l, pv.dtype(), pv.device()));
  if (any_requires_grad({&probs})) {
    record_op("seq_aux_loss", out,
              [ps = probs.grad_slot(), f = std::move(f), r_tokens = r.tokens, e_count, t_len, b_count,
               dtype = pv.dtype()](const Tensor& dout) {
                double g = dout.item() / double(t_len * b_count);
                std::vector<double> dp(size_t(r_tokens * e_count));
                for (int64_t t = 0; t < r_tokens; ++t)
                  for (int64_t e = 0; e < e_count; ++e)
                    dp[size_t(t * e_count + e)] = g * f[size_t(t / t_len * e_count + e)];
                add_host_gradient(ps, dp, {r_tokens, e_count}, dtype);
              });
  }
  return out;
}

Variable router_z_loss(const Variable& logits) {
  require_defined("router_z_loss", {{"logits", &logits}});
  const Tensor& zv = logits.value();
  MT_CHECK(zv.dim() == 2, "router_z_loss: logits ", zv.str(), " must be [tokens, experts]");
  int64_t s = zv.size(0), e = zv.size(1);
  std::vector<double> z = zv.to_double_vector(), lse(static_cast<size_t>(s));
  double l = 0;
  for (int64_t t = 0; t < s; ++t) {  // logsumexp, shifted by the row's largest logit
    const double* row = z.data() + t * e;
    double top = *std::max_element(row, row + e), sum = 0;
    for (int64_t j = 0; j < e; ++j) sum += std::exp(row[j] - top);
    lse[size_t(t)] = top + std::log(sum);
    l += lse[size_t(t)] * lse[size_t(t)] / double(s);
  }
  Variable out(Tensor::scalar(l, zv.dtype(), zv.device()));
  if (any_requires_grad({&logits})) {
    record_op("router_z_loss", out,
              [zs = logits.grad_slot(), z = std::move(z), lse = std::move(lse), s, e,
               dtype = zv.dtype()](const Tensor& dout) {
                double g = dout.item() * 2.0 / double(s);
                std::vector<double> dz(z.size());
                for (int64_t t = 0; t < s; ++t)
                  for (int64_t j = 0; j < e; ++j) {
                    size_t i = size_t(t * e + j);
                    dz[i] = g * lse[size_t(t)] * std::exp(z[i] - lse[size_t(t)]);
                  }
                add_host_gradient(zs, dz, {s, e}, dtype);
              });
  }
  return out;
}

Variable sigmoid_scores(const Variable& logits) {
  require_defined("sigmoid_scores", {{"logits", &logits}});
  const Tensor& zv = logits.value();
  std::vector<double> s = zv.to_double_vector();
  for (double& v : s) v = 1.0 / (1.0 + std::exp(-v));
  Variable out(Tensor::from_vector(s, zv.shape()).to(zv.dtype()).to(zv.device()));
  if (any_requires_grad({&logits})) {
    record_op("sigmoid_scores", out,
              [zs = logits.grad_slot(), s = std::move(s), shape = zv.shape(), dtype = zv.dtype()](const Tensor& dout) {
                std::vector<double> dz = dout.to_double_vector();
                for (size_t i = 0; i < dz.size(); ++i) dz[i] *= s[i] * (1.0 - s[i]);
                add_host_gradient(zs, dz, shape, dtype);
              });
  }
  return out;
}

Variable normalize_rows(const Variable& scores) {
  require_defined("normalize_rows", {{"scores", &scores}});
  const Tensor& sv = scores.value();
  MT_CHECK(sv.dim() == 2, "normalize_rows: scores ", sv.str(), " must be [tokens, experts]");
  int64_t rows = sv.size(0), cols = sv.size(1);
  std::vector<double> y = sv.to_double_vector(), d(static_cast<size_t>(rows), 0.0);
  for (int64_t t = 0; t < rows; ++t) {
    for (int64_t e = 0; e < cols; ++e) d[size_t(t)] += y[size_t(t * cols + e)];
    d[size_t(t)] += 1e-20;  // (Megatron-Core's guard against an all-zero row)
    for (int64_t e = 0; e < cols; ++e) y[size_t(t * cols + e)] /= d[size_t(t)];
  }
  Variable out(Tensor::from_vector(y, sv.shape()).to(sv.dtype()).to(sv.device()));
  if (any_requires_grad({&scores})) {
    record_op("normalize_rows", out,
              [ss = scores.grad_slot(), y = std::move(y), d = std::move(d), rows, cols,
               dtype = sv.dtype()](const Tensor& dout) {
                std::vector<double> dy = dout.to_double_vector(), ds(dy.size());
                for (int64_t t = 0; t < rows; ++t) {
                  double dot = 0;
                  for (int64_t e = 0; e < cols; ++e) dot += dy[size_t(t * cols + e)] * y[size_t(t * cols + e)];
                  for (int64_t e = 0; e < cols; ++e)
                    ds[size_t(t * cols + e)] = (dy[size_t(t * cols + e)] - dot) / d[size_t(t)];
                }
                add_host_gradient(ss, ds, {rows, cols}, dtype);
              });
  }
  return out;
}

RowIndex::RowIndex(const Routing& r, Device device) {
  std::vector<int64_t> p = dispatch_positions(r);
  int64_t n = r.num_kept(), a_count = int64_t(p.size());
  // one host buffer [pos | token | assign | owner], one copy, four views
  std::vector<int64_t> all(size_t(2 * a_count + 2 * n), -1);
  int64_t* tok = all.data() + a_count;
  int64_t* asg = tok + n;
  int64_t* own = asg + n;
  for (int64_t a = 0; a < a_count; ++a) {
    all[size_t(a)] = p[size_t(a)];
    own[a] = a / r.k;
    if (p[size_t(a)] < 0) continue;
    tok[p[size_t(a)]] = a / r.k;
    asg[p[size_t(a)]] = a;
  }
  Tensor t = Tensor::from_vector(all, {int64_t(all.size())}).to(device);
  pos = t.narrow(0, a_count).reshape({r.tokens, r.k});
  token = t.narrow(a_count, n);
  assign = t.narrow(a_count + n, n);
  owner = t.narrow(a_count + 2 * n, a_count);
}

// --- dispatch: x [S,h] -> rows [N,h] (rows[i] = x[token_i]);  backward dx[t] += sum_j drows[pos(t,j)] ---
Variable dispatch(const Variable& x, const Routing& r, std::shared_ptr<const RowIndex> idx) {
  require_defined("dispatch", {{"x", &x}});
  const Tensor& xv = x.value();
  MT_CHECK(xv.dim() == 2 && xv.size(0) == r.tokens, "dispatch: x ", xv.str(), " must be [", r.tokens, ", hidden]");
  if (!idx) idx = std::make_shared<const RowIndex>(r, xv.device());
  Tensor rows = Tensor::empty({r.num_kept(), xv.size(1)}, xv.dtype(), xv.device());
  ops::gather_rows(xv, &idx->token, nullptr, 0, false, rows);
  Variable out(rows);
  if (any_requires_grad({&x})) {
    record_op("dispatch", out, [xs = x.grad_slot(), idx](const Tensor& dout) {
      ops::combine_rows(dout, idx->pos, nullptr, true, xs.grad_ref());
    });
  }
  return out;
}

// --- combine: y_t = sum_j w[t,j] rows[pos(t,j)] ------------------------------------------------------
// backward: drows[i] += w[assign_i] dy[token_i];  dw[t,j] += <dy_t, rows[pos(t,j)]>
Variable combine(const Variable& rows, const Variable& weights, const Routing& r, std::shared_ptr<const RowIndex> idx) {
  require_defined("combine", {{"rows", &rows}, {"weights", &weights}});
  const Tensor &rv = rows.value(), &wv = weights.value();
  MT_CHECK(
      (rv.dim() == 2 && rv.size(0) == r.num_kept() && wv.shape() == Shape{r.tokens, r.k} && rv.dtype() == wv.dtype()),
      "combine: rows ", rv.str(), " and weights ", wv.str(), " do not match the routing (", r.num_kept(),
      " kept rows, ", r.tokens, " tokens, k ", r.k, ")");
  if (!idx) idx = std::make_shared<const RowIndex>(r, rv.device());
  Tensor y = Tensor::empty({r.tokens, rv.size(1)}, rv.dtype(), rv.device());
  ops::combine_rows(rv, idx->pos, &wv, false, y);
  Variable out(y);
  if (any_requires_grad({&rows, &weights})) {
    record_op("combine", out, [rs = rows.grad_slot(), ws = weights.grad_slot(), rv, wv, idx](const Tensor& dout) {
      if (rs.requires_grad()) {  // each row's weight: w at its assignment
        Tensor w_flat = wv.reshape({wv.numel(), 1});
        Tensor row_w = Tensor::empty({idx->assign.numel(), 1}, wv.dtype(), wv.device());
        ops::gather_rows(w_flat, &idx->assign, nullptr, 0, false, row_w);
        Tensor row_w1 = row_w.reshape({row_w.numel()});
        ops::gather_rows(dout, &idx->token, &row_w1, 0, true, rs.grad_ref());
      }
      if (ws.requires_grad()) {
        Tensor dw = Tensor::zeros({wv.numel()}, wv.dtype(), wv.device());
        Tensor pos_flat = idx->pos.reshape({idx->pos.numel()});
        ops::row_dots(dout, &idx->owner, rv, &pos_flat, 0, dw);
        Tensor g = ws.grad_ref().reshape({wv.numel()});
        ops::add_(g, dw);
      }
    });
  }
  return out;
}

// --- per-token scaling by a coefficient column ----------------------------------------------------------
Variable scale_rows(const Variable& x, const Variable& coeffs, int64_t col) {
  require_defined("scale_rows", {{"x", &x}, {"coeffs", &coeffs}});
  const Tensor &xv = x.value(), &cv = coeffs.value();
  MT_CHECK(xv.dim() == 2 && cv.dim() == 2 && cv.size(0) == xv.size(0) && col >= 0 && col < cv.size(1) &&
               xv.dtype() == cv.dtype(),
           "scale_rows: x ", xv.str(), " and coeffs ", cv.str(), " must be [S,h] and [S,m] of one dtype, column ", col);
  Tensor y = Tensor::empty(xv.shape(), xv.dtype(), xv.device());
  ops::gather_rows(xv, nullptr, &cv, col, false, y);
  Variable out(y);
  if (any_requires_grad({&x, &coeffs})) {
    record_op("scale_rows", out, [xs = x.grad_slot(), cs = coeffs.grad_slot(), xv, cv, col](const Tensor& dout) {
      if (xs.requires_grad()) ops::gather_rows(dout, nullptr, &cv, col, true, xs.grad_ref());
      if (cs.requires_grad()) ops::row_dots(dout, nullptr, xv, nullptr, col, cs.grad_ref());
    });
  }
  return out;
}

// --- split / concat of row blocks --------------------------------------------------------------------
std::vector<Variable> split_rows(const Variable& x, const std::vector<int64_t>& sizes) {
  require_defined("split_rows", {{"x", &x}});
  std::vector<Variable> parts;
  int64_t start = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    Variable part(x.value().narrow(start, sizes[i]));  // a view: no copy
    if (any_requires_grad({&x})) {
      record_op("split_rows", part, [xs = x.grad_slot(), start, n = sizes[i]](const Tensor& dout) {
        Tensor dx = xs.grad_ref().narrow(start, n);
        ops::add_(dx, dout);
      });
    }
    parts.push_back(part);
    start += sizes[i];
  }
  MT_CHECK(start == x.value().size(0), "split_rows: sizes add up to ", start, " rows but x has ", x.value().size(0));
  return parts;
}

Variable concat_rows(const std::vector<Variable>& parts, int64_t cols) {
  int64_t rows = 0;
  DType dtype = DType::F32;
  for (const Variable& p : parts) {
    require_defined("concat_rows", {{"part", &p}});
    MT_CHECK(p.value().dim() == 2 && p.value().size(1) == cols, "concat_rows: part ", p.value().str(), " is not [*, ",
             cols, "]");
    rows += p.value().size(0);
    dtype = p.dtype();
  }
  Tensor out_t = Tensor::empty({rows, cols}, dtype, parts.empty() ? Device::cpu() : parts[0].device());
  int64_t start = 0;
  std::vector<int64_t> starts;
  for (const Variable& p : parts) {
    starts.push_back(start);
    Tensor dst = out_t.narrow(start, p.value().size(0));
    dst.copy_from(p.value());
    start += p.value().size(0);
  }
  Variable out(out_t);
  bool needs = false;
  for (const Variable& p : parts) needs = needs || any_requires_grad({&p});
  if (needs) {
    std::vector<GradSlot> slots;
    std::vector<int64_t> sizes;
    for (const Variable& p : parts) {
      slots.push_back(p.grad_slot());
      sizes.push_back(p.value().size(0));
    }
    record_op("concat_rows", out, [slots, sizes, starts](const Tensor& dout) {
      for (size_t i = 0; i < slots.size(); ++i)
        if (slots[i].requires_grad())
          ops::add_(slots[i].grad_ref(), dout.narrow(starts[i], sizes[i]));  // empty parts too:
      // their producers may be collectives (expert parallelism) that every rank must run backward
    });
  }
  return out;
}

}  // namespace mt::moe
