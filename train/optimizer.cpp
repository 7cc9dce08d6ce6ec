#include "train/optimizer.h"

#include <cmath>

#include "runtime/ops.h"

namespace mt::train {

AdamW::AdamW(ParameterRegistry& params, AdamWOptions options) : params_(params), opt_(options) {
  MT_CHECK(params.packed(), "AdamW: the parameter registry must be packed first");
  for (int g = 0; g < kNumParamGroups; ++g) {
    const Tensor& values = params.flat_values(ParamGroup(g));
    if (!values.defined()) continue;
    m_[g] = Tensor::zeros(values.shape(), values.dtype(), values.device());
    v_[g] = Tensor::zeros(values.shape(), values.dtype(), values.device());
  }
}

void AdamW::step(double lr) {
  ++steps_;
  AdamWArgs a;
  a.lr = lr;
  a.beta1 = opt_.beta1;
  a.beta2 = opt_.beta2;
  a.eps = opt_.eps;
  a.correction1 = 1.0 - std::pow(opt_.beta1, double(steps_));
  a.correction2 = 1.0 - std::pow(opt_.beta2, double(steps_));
  for (const Parameter& p : params_.all()) {
    int g = int(p.group());
    int64_t n = p.var.value().numel();
    Tensor w = p.var.value(), m = m_[g].narrow(p.offset, n).reshape(w.shape()),
           v = v_[g].narrow(p.offset, n).reshape(w.shape());
    a.weight_decay = p.tags.weight_decay ? opt_.weight_decay : 0.0;
    ops::adamw_step(w, p.var.grad(), m, v, a);
  }
}

namespace {
// Sum of v over a group (v itself without one).
double sum_over(parallel::Communicator* group, double v) {
  if (!group || group->size() == 1) return v;
  Tensor t = Tensor::from_vector(std::vector<double>{v}, {1});
  group->all_reduce(t, parallel::ReduceKind::Sum);
  return t.to_double_vector()[0];
}
}  // namespace

double global_grad_norm(const ParameterRegistry& params, parallel::Communicator* expert_group,
                        parallel::Communicator* tensor_group) {
  double squares[kNumParamGroups] = {};
  for (int g = 0; g < kNumParamGroups; ++g) {
    const Tensor& grads = params.flat_grads(ParamGroup(g));
    if (grads.defined()) squares[g] = ops::reduce(ReduceOp::SumSquares, grads);
  }
  double& dense = squares[int(ParamGroup::Dense)];
  if (tensor_group && tensor_group->size() > 1) {  // dense = replicated + the shards of every tensor rank
    double shards = 0;
    for (const Parameter& p : params.all())
      if (p.group() == ParamGroup::Dense && p.tags.tp_split_dim >= 0)
        shards += ops::reduce(ReduceOp::SumSquares, p.var.grad());
    dense = (dense - shards) + sum_over(tensor_group, shards);
  }
  double& experts = squares[int(ParamGroup::Expert)];
  experts = sum_over(expert_group, experts);
  double sum = 0;
  for (double s : squares) sum += s;
  return std::sqrt(sum);
}

double clip_grad_norm(ParameterRegistry& params, double max_norm, parallel::Communicator* expert_group,
                      parallel::Communicator* tensor_group) {
  double norm = global_grad_norm(params, expert_group, tensor_group);
  clip_grad_norm(params, max_norm, norm);
  return norm;
}

namespace {
void scale_gradients(ParameterRegistry& params, double factor) {
  for (int g = 0; g < kNumParamGroups; ++g) {
    Tensor grads = params.flat_grads(ParamGroup(g));
    if (grads.defined()) ops::scale_(grads, factor);
  }
}
}  // namespace

void clip_grad_norm(ParameterRegistry& params, double max_norm, double norm) {
  if (max_norm > 0 && std::isfinite(norm) && norm > max_norm) scale_gradients(params, max_norm / (norm + 1e-6));
}

void unscale_gradients(ParameterRegistry& params, double scale) {
  if (scale != 1.0) scale_gradients(params, 1.0 / scale);
}

LrSchedule::LrSchedule(const TrainConfig& cfg, int64_t train_iters)
    : max_lr_(cfg.lr), min_lr_(cfg.min_lr), style_(cfg.lr_decay_style), by_tokens_(cfg.lr_decay_tokens > 0) {
  if (by_tokens_) {
    decay_ = double(cfg.lr_decay_tokens);
    warmup_ = cfg.lr_warmup_fraction > 0 ? cfg.lr_warmup_fraction * decay_ : double(cfg.lr_warmup_tokens);
  } else {
    decay_ = double(cfg.lr_decay_iters > 0 ? cfg.lr_decay_iters : train_iters);
    warmup_ = cfg.lr_warmup_fraction > 0 ? cfg.lr_warmup_fraction * decay_ : double(cfg.lr_warmup_iters);
  }
  MT_CHECK(warmup_ <= decay_, "the learning-rate warmup (", warmup_, ") is longer than the decay (", decay_, ")");
}

double LrSchedule::lr(int64_t completed, int64_t tokens) const {
  double n = by_tokens_ ? double(tokens) : double(completed);
  if (warmup_ > 0 && n <= warmup_) return max_lr_ * n / warmup_;
  if (style_ == "constant") return max_lr_;
  if (n > decay_) return min_lr_;
  double ratio = decay_ > warmup_ ? (n - warmup_) / (decay_ - warmup_) : 1.0;
  double coeff = style_ == "linear" ? 1.0 - ratio : 0.5 * (std::cos(M_PI * ratio) + 1.0);
  return min_lr_ + coeff * (max_lr_ - min_lr_);
}

}  // namespace mt::train
