#include "op_cases.h"

#include <cmath>

#include "autograd/ops.h"
#include "nn/kd_loss.h"
#include "test_util.h"

using namespace mt;

namespace testops {
namespace {

Variable param(const Shape& s, DType dt, uint64_t seed, double lo = -1, double hi = 1) {
  return Variable(testutil::random(s, dt, seed, lo, hi), true);
}
Variable fixed(Tensor t) {
  return Variable(std::move(t), false);
}
std::vector<double> vals(const Tensor& t) {
  return t.to_double_vector();
}

// --- naive references (f64 loops) -----------------------------------------------------------

std::vector<double> ref_linear(const std::vector<Tensor>& in) {
  auto x = vals(in[0]), w = vals(in[1]);
  int64_t out_f = in[1].size(0), k = in[1].size(1), n = in[0].numel() / k;
  std::vector<double> b = in.size() > 2 ? vals(in[2]) : std::vector<double>(size_t(out_f), 0.0);
  std::vector<double> y(static_cast<size_t>(n * out_f));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < out_f; ++o) {
      double s = b[o];
      for (int64_t j = 0; j < k; ++j) s += x[i * k + j] * w[o * k + j];
      y[i * out_f + o] = s;
    }
  return y;
}

std::vector<double> ref_embedding(const std::vector<Tensor>& in) {
  auto idx = vals(in[0]), wte = vals(in[1]), wpe = vals(in[2]);
  int64_t bsz = in[0].size(0), t_len = in[0].size(1), c = in[1].size(1);
  std::vector<double> y(static_cast<size_t>(bsz * t_len * c));
  for (int64_t b = 0; b < bsz; ++b)
    for (int64_t t = 0; t < t_len; ++t)
      for (int64_t j = 0; j < c; ++j)
        y[(b * t_len + t) * c + j] = wte[int64_t(idx[b * t_len + t]) * c + j] + wpe[t * c + j];
  return y;
}

// A vocabulary shard (rows [start, start + V) of wte, possibly no wpe): other ids give 0.
std::vector<double> ref_embedding_shard(const std::vector<Tensor>& in, int64_t start) {
  auto idx = vals(in[0]), wte = vals(in[1]);
  int64_t bsz = in[0].size(0), t_len = in[0].size(1), c = in[1].size(1), rows = in[1].size(0);
  std::vector<double> y(static_cast<size_t>(bsz * t_len * c), 0.0);
  for (int64_t n = 0; n < bsz * t_len; ++n) {
    int64_t r = int64_t(idx[size_t(n)]) - start;
    if (r >= 0 && r < rows)
      for (int64_t j = 0; j < c; ++j) y[size_t(n * c + j)] = wte[size_t(r * c + j)];
  }
  return y;
}

std::vector<double> ref_layernorm(const std::vector<Tensor>& in) {
  auto x = vals(in[0]), w = vals(in[1]), b = vals(in[2]);
  int64_t c = in[1].numel(), n = in[0].numel() / c;
  std::vector<double> y(x.size());
  for (int64_t i = 0; i < n; ++i) {
    double mu = 0, var = 0;
    for (int64_t j = 0; j < c; ++j) mu += x[i * c + j] / double(c);
    for (int64_t j = 0; j < c; ++j) var += (x[i * c + j] - mu) * (x[i * c + j] - mu) / double(c);
    for (int64_t j = 0; j < c; ++j) y[i * c + j] = (x[i * c + j] - mu) / std::sqrt(var + 1e-5) * w[j] + b[j];
  }
  return y;
}

std::vector<double> ref_gelu(const std::vector<Tensor>& in) {
  auto x = vals(in[0]);
  for (double& v : x) v = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
  return x;
}

std::vector<double> ref_softmax(const std::vector<Tensor>& in) {
  auto x = vals(in[0]);
  int64_t c = in[0].size(-1), n = in[0].numel() / c;
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t j = 0; j < c; ++j) s += std::exp(x[i * c + j]);
    for (int64_t j = 0; j < c; ++j) x[i * c + j] = std::exp(x[i * c + j]) / s;
  }
  return x;
}

// Full [T,T] scores per head with an explicit causal mask: the textbook definition; with dropout,
// probability (t, s) of head (b, h) is kept with the mask of element ((b*H + h)*T + t)*T + s.
std::vector<double> ref_attention(const std::vector<Tensor>& in, int64_t heads, double dropout_p = 0.0,
                                  RngKey key = {}) {
  auto qkv = vals(in[0]);
  int64_t bsz = in[0].size(0), t_len = in[0].size(1), c = in[0].size(2) / 3, d = c / heads;
  std::vector<double> y(static_cast<size_t>(bsz * t_len * c));
  auto at = [&](int64_t b, int64_t t, int64_t col) { return qkv[(b * t_len + t) * 3 * c + col]; };
  for (int64_t b = 0; b < bsz; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t t = 0; t < t_len; ++t) {
        std::vector<double> p(size_t(t_len), 0.0);
        double mx = -1e300, sum = 0;
        for (int64_t s = 0; s < t_len; ++s) {
          if (s > t) continue;
          double dot = 0;
          for (int64_t j = 0; j < d; ++j) dot += at(b, t, h * d + j) * at(b, s, c + h * d + j);
          p[s] = dot / std::sqrt(double(d));
          mx = std::max(mx, p[s]);
        }
        for (int64_t s = 0; s <= t; ++s) sum += (p[s] = std::exp(p[s] - mx));
        if (dropout_p > 0)
          for (int64_t s = 0; s <= t; ++s) {
            uint64_t index = uint64_t(((b * heads + h) * t_len + t) * t_len + s);
            p[s] *= uniform_at(key, index) >= float(dropout_p) ? 1.0 / (1.0 - dropout_p) : 0.0;
          }
        for (int64_t j = 0; j < d; ++j) {
          double o = 0;
          for (int64_t s = 0; s <= t; ++s) o += p[s] / sum * at(b, s, 2 * c + h * d + j);
          y[(b * t_len + t) * c + h * d + j] = o;
        }
      }
  return y;
}

std::vector<double> ref_add(const std::vector<Tensor>& in) {
  auto a = vals(in[0]), b = vals(in[1]);
  for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
  return a;
}

std::vector<double> ref_dropout(const std::vector<Tensor>& in, double p, RngKey key) {
  auto x = vals(in[0]);
  for (size_t i = 0; i < x.size(); ++i) x[i] = uniform_at(key, i) >= float(p) ? x[i] / (1 - p) : 0.0;
  return x;
}

std::vector<double> ref_cross_entropy(const std::vector<Tensor>& in, bool masked) {
  auto z = vals(in[0]), t = vals(in[1]);
  int64_t v = in[0].size(-1), n = in[0].numel() / v;
  std::vector<double> m = masked ? vals(in[2]) : std::vector<double>(size_t(n), 1.0);
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t j = 0; j < v; ++j) s += std::exp(z[i * v + j]);
    num += m[i] * (std::log(s) - z[i * v + int64_t(t[i])]);
    den += m[i];
  }
  return {den ? num / den : 0.0};
}

// beta T^2 sum_n w_n sum_v p (log p - log q), p = softmax(b/T), q = softmax(a/T); w = mask / sum.
std::vector<double> ref_kd(const std::vector<Tensor>& in, double t, double beta) {
  auto a = vals(in[0]), b = vals(in[1]);
  int64_t v = in[0].size(-1), n = in[0].numel() / v;
  std::vector<double> m = in.size() > 2 ? vals(in[2]) : std::vector<double>(size_t(n), 1.0);
  double total = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    double za = 0, zb = 0;
    for (int64_t j = 0; j < v; ++j) za += std::exp(a[size_t(i * v + j)] / t), zb += std::exp(b[size_t(i * v + j)] / t);
    double kl = 0;
    for (int64_t j = 0; j < v; ++j) {
      double p = std::exp(b[size_t(i * v + j)] / t) / zb, q = std::exp(a[size_t(i * v + j)] / t) / za;
      kl += p * (std::log(p) - std::log(q));
    }
    total += m[size_t(i)] * kl;
    den += m[size_t(i)];
  }
  return {beta * t * t * total / den};
}

// --- the table ------------------------------------------------------------------------------

void add_linear(std::vector<OpCase>& cases, Shape x_shape, int64_t out_f, bool bias) {
  int64_t in_f = x_shape.back();
  std::string desc = "x" + shape_str(x_shape) + " out=" + std::to_string(out_f) + (bias ? "" : " no-bias");
  cases.push_back(
      {"linear", desc,
       [=](DType dt) {
         std::vector<Variable> v = {param(x_shape, dt, 1), param({out_f, in_f}, dt, 2)};
         if (bias) v.push_back(param({out_f}, dt, 3));
         return v;
       },
       [](const std::vector<Variable>& v) { return ag::linear(v[0], v[1], v.size() > 2 ? v[2] : Variable()); },
       ref_linear});
}

void add_embedding(std::vector<OpCase>& cases, int64_t bsz, int64_t t_len, int64_t vocab, int64_t c, DType idx_dt) {
  std::string desc = "B=" + std::to_string(bsz) + " T=" + std::to_string(t_len) + " V=" + std::to_string(vocab) +
                     " C=" + std::to_string(c) + " idx " + dtype_name(idx_dt);
  cases.push_back({"embedding", desc,
                   [=](DType dt) {
                     return std::vector<Variable>{fixed(testutil::random_ids({bsz, t_len}, vocab, 4, idx_dt)),
                                                  param({vocab, c}, dt, 5), param({t_len + 2, c}, dt, 6)};
                   },
                   [](const std::vector<Variable>& v) { return ag::embedding(v[0].value(), v[1], v[2]); },
                   ref_embedding});
}

// Vocab-parallel word embedding: a table of rows [start, start + rows) of a vocabulary of `vocab`.
void add_embedding_shard(std::vector<OpCase>& cases, int64_t vocab, int64_t start, int64_t rows) {
  std::string desc = "B=2 T=6 V=" + std::to_string(vocab) + " shard [" + std::to_string(start) + "," +
                     std::to_string(start + rows) + ") C=5 no wpe";
  VocabShard shard{start, vocab};
  cases.push_back({"embedding", desc,
                   [=](DType dt) {
                     return std::vector<Variable>{fixed(testutil::random_ids({2, 6}, vocab, 15, DType::I32)),
                                                  param({rows, 5}, dt, 16)};
                   },
                   [=](const std::vector<Variable>& v) { return ag::embedding(v[0].value(), v[1], {}, shard); },
                   [=](const std::vector<Tensor>& in) { return ref_embedding_shard(in, start); }});
}

void add_unary(std::vector<OpCase>& cases, const std::string& op, Shape s, double lo, double hi,
               std::function<Variable(const Variable&)> fn,
               std::function<std::vector<double>(const std::vector<Tensor>&)> ref) {
  cases.push_back({op, "x" + shape_str(s), [=](DType dt) { return std::vector<Variable>{param(s, dt, 7, lo, hi)}; },
                   [fn](const std::vector<Variable>& v) { return fn(v[0]); }, ref});
}

void add_layernorm(std::vector<OpCase>& cases, Shape s) {
  int64_t c = s.back();
  cases.push_back(
      {"layernorm", "x" + shape_str(s),
       [=](DType dt) {
         return std::vector<Variable>{param(s, dt, 8, -2, 2), param({c}, dt, 9, 0.5, 1.5), param({c}, dt, 10)};
       },
       [](const std::vector<Variable>& v) { return ag::layernorm(v[0], v[1], v[2]); }, ref_layernorm});
}

void add_attention(std::vector<OpCase>& cases, int64_t bsz, int64_t t_len, int64_t heads, int64_t d,
                   double dropout_p = 0.0) {
  std::string desc = "B=" + std::to_string(bsz) + " T=" + std::to_string(t_len) + " H=" + std::to_string(heads) +
                     " D=" + std::to_string(d) + (dropout_p > 0 ? " dropout " + std::to_string(dropout_p) : "");
  RngKey key = rng_key(99, 3, 1, 2);
  cases.push_back({"attention", desc,
                   [=](DType dt) {
                     return std::vector<Variable>{param({bsz, t_len, 3 * heads * d}, dt, 11)};
                   },
                   [=](const std::vector<Variable>& v) {
                     return ag::causal_self_attention(v[0], heads, {dropout_p, key});
                   },
                   [=](const std::vector<Tensor>& in) { return ref_attention(in, heads, dropout_p, key); }});
}

void add_cross_entropy(std::vector<OpCase>& cases, Shape rows, int64_t vocab, bool masked, DType idx_dt) {
  Shape logits_shape = rows;
  logits_shape.push_back(vocab);
  std::string desc = "logits" + shape_str(logits_shape) + (masked ? " masked" : "") + " targets " + dtype_name(idx_dt);
  cases.push_back({"cross_entropy", desc,
                   [=](DType dt) {
                     std::vector<Variable> v = {param(logits_shape, dt, 12, -3, 3),
                                                fixed(testutil::random_ids(rows, vocab, 13, idx_dt))};
                     if (masked) {
                       Tensor m = testutil::random(rows, dt, 14, 0, 1);
                       for (int64_t i = 0; i < m.numel(); ++i) {  // a 0/1 mask with some zeros
                         double keep = m.to_double_vector()[i] > 0.3 ? 1.0 : 0.0;
                         if (dt == DType::F32)
                           m.data<float>()[i] = float(keep);
                         else
                           m.data<double>()[i] = keep;
                       }
                       v.push_back(fixed(m));
                     }
                     return v;
                   },
                   [](const std::vector<Variable>& v) {
                     return ag::cross_entropy(v[0], v[1].value(), v.size() > 2 ? v[2].value() : Tensor());
                   },
                   [masked](const std::vector<Tensor>& in) { return ref_cross_entropy(in, masked); }});
}

void add_kd_loss(std::vector<OpCase>& cases, Shape shape, double t, double beta, bool masked) {
  std::string desc = "logits" + shape_str(shape) + " T=" + std::to_string(t) + " beta=" + std::to_string(beta) +
                     (masked ? " masked" : "");
  Shape rows(shape.begin(), shape.end() - 1);
  cases.push_back(
      {"kd_loss", desc,
       [=](DType dt) {
         std::vector<Variable> v = {param(shape, dt, 19, -3, 3), fixed(testutil::random(shape, dt, 20, -3, 3))};
         if (masked) {
           std::vector<double> m(size_t(shape_numel(rows)), 1.0);
           m[1] = 0.0;
           v.push_back(fixed(Tensor::from_vector(m, rows).to(dt)));
         }
         return v;
       },
       [=](const std::vector<Variable>& v) {
         return nn::kd_loss(v[0], v[1].value(), t, beta, v.size() > 2 ? v[2].value() : Tensor());
       },
       [=](const std::vector<Tensor>& in) { return ref_kd(in, t, beta); }});
}

std::vector<OpCase> build() {
  std::vector<OpCase> cases;
  add_linear(cases, {2, 5, 12}, 7, true);
  add_linear(cases, {1, 1, 3}, 5, true);
  add_linear(cases, {9, 16}, 8, false);
  for (Shape x_shape : {Shape{2, 5, 7}, Shape{1, 3}}) {
    cases.push_back({"add_bias", "x" + shape_str(x_shape),
                     [=](DType dt) {
                       return std::vector<Variable>{param(x_shape, dt, 17), param({x_shape.back()}, dt, 18)};
                     },
                     [](const std::vector<Variable>& v) { return ag::add_bias(v[0], v[1]); },
                     [](const std::vector<Tensor>& in) {
                       auto x = vals(in[0]), b = vals(in[1]);
                       for (size_t i = 0; i < x.size(); ++i) x[i] += b[i % b.size()];
                       return x;
                     }});
  }

  add_embedding(cases, 2, 5, 11, 6, DType::I64);
  add_embedding(cases, 1, 1, 3, 9, DType::I32);
  add_embedding_shard(cases, 12, 4, 4);
  add_embedding_shard(cases, 12, 0, 6);

  add_layernorm(cases, {2, 5, 12});
  add_layernorm(cases, {1, 7});

  add_unary(
      cases, "gelu", {3, 13}, -4, 4, [](const Variable& x) { return ag::gelu(x); }, ref_gelu);
  add_unary(
      cases, "gelu", {1}, -1, 1, [](const Variable& x) { return ag::gelu(x); }, ref_gelu);
  add_unary(
      cases, "softmax", {4, 9}, -3, 3, [](const Variable& x) { return ag::softmax(x); }, ref_softmax);
  add_unary(
      cases, "softmax", {2, 3, 1}, -3, 3, [](const Variable& x) { return ag::softmax(x); }, ref_softmax);

  add_attention(cases, 2, 5, 3, 4);
  add_attention(cases, 1, 1, 1, 3);
  add_attention(cases, 1, 70, 2, 3);  // more than one 64-row query block
  add_attention(cases, 2, 9, 2, 3, 0.25);
  add_attention(cases, 1, 67, 1, 4, 0.1);

  cases.push_back({"add", "a[3,5] b[3,5]",
                   [](DType dt) {
                     return std::vector<Variable>{param({3, 5}, dt, 15), param({3, 5}, dt, 16)};
                   },
                   [](const std::vector<Variable>& v) { return ag::add(v[0], v[1]); }, ref_add});
  cases.push_back({"add", "a used twice", [](DType dt) { return std::vector<Variable>{param({4}, dt, 17)}; },
                   [](const std::vector<Variable>& v) { return ag::add(v[0], v[0]); },
                   [](const std::vector<Tensor>& in) {
                     return ref_add({in[0], in[0]});
                   }});

  RngKey key = rng_key(1234, 5, 2, 1);
  add_unary(
      cases, "dropout", {6, 11}, -1, 1, [key](const Variable& x) { return ag::dropout(x, 0.3, key); },
      [key](const std::vector<Tensor>& in) { return ref_dropout(in, 0.3, key); });

  add_cross_entropy(cases, {2, 4}, 11, false, DType::I64);
  add_cross_entropy(cases, {2, 5}, 9, true, DType::I32);
  add_cross_entropy(cases, {1}, 3, false, DType::I64);
  add_kd_loss(cases, {2, 3, 7}, 1.0, 1.0, false);
  add_kd_loss(cases, {4, 9}, 2.0, 0.5, true);
  add_moe_cases(cases);
  return cases;
}

}  // namespace

const std::vector<OpCase>& op_cases() {
  static const std::vector<OpCase> cases = build();
  return cases;
}

}  // namespace testops
