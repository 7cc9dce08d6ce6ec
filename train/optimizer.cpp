#include "train/optimizer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "runtime/ops.h"

namespace mt::train {

AdamW::AdamW(ParameterRegistry& params, AdamWOptions options, ZeroPartition zero)
    : params_(params), opt_(options), zero_(zero) {
  MT_CHECK(params.packed(), "AdamW: the parameter registry must be packed first");
  for (int g = 0; g < kNumParamGroups; ++g) {
    const Tensor& values = params.flat_values(ParamGroup(g));
    if (!values.defined()) continue;
    shards_[g] = FlatShard::of(values.numel(), zero_.stage >= 1 ? zero_.groups[g] : nullptr, zero_.allgather_bucket);
    m_[g] = Tensor::zeros({shards_[g].owned()}, values.dtype(), values.device());
    v_[g] = Tensor::zeros({shards_[g].owned()}, values.dtype(), values.device());
  }
}

Tensor AdamW::full_moment(Moment which, ParamGroup g) {
  return shards_[int(g)].gather(moment(which, g));
}

void AdamW::set_full_moment(Moment which, ParamGroup g, const Tensor& full) {
  const FlatShard& s = shards_[int(g)];
  MT_CHECK(full.numel() == s.length, "AdamW: a moment of ", full.numel(), " elements for a group of ", s.length);
  if (s.owned() > 0) moment(which, g).copy_from(full.reshape({-1}).narrow(s.begin, s.owned()));
}

void AdamW::step(double lr, const HeldGradients* held) {
  HeldGradients whole;
  if (!held) {
    whole = HeldGradients::whole(params_);
    held = &whole;
  }
  ++steps_;
  AdamWArgs a;
  a.lr = lr;
  a.beta1 = opt_.beta1;
  a.beta2 = opt_.beta2;
  a.eps = opt_.eps;
  a.correction1 = 1.0 - std::pow(opt_.beta1, double(steps_));
  a.correction2 = 1.0 - std::pow(opt_.beta2, double(steps_));
  // Each parameter's elements in this rank's chunk of its group (all of them without ZeRO).
  for (const Parameter& p : params_.all()) {
    int g = int(p.group());
    const FlatShard& s = shards_[g];
    int64_t lo = std::max(p.offset, s.begin), hi = std::min(p.offset + p.var.value().numel(), s.end);
    if (hi <= lo) continue;
    MT_CHECK(lo >= held->begin[g] && hi <= held->begin[g] + held->grads[g].numel(), "AdamW: '", p.name,
             "': the gradients held do not cover this rank's chunk");
    Tensor w = params_.flat_values(p.group()).narrow(lo, hi - lo),
           g_ = held->grads[g].narrow(lo - held->begin[g], hi - lo);
    Tensor m = m_[g].narrow(lo - s.begin, hi - lo), v = v_[g].narrow(lo - s.begin, hi - lo);
    a.weight_decay = p.tags.weight_decay ? opt_.weight_decay : 0.0;
    ops::adamw_step(w, g_, m, v, a);
  }
  // ZeRO: every rank's updated chunk to every rank
  for (int g = 0; g < kNumParamGroups; ++g) {
    Tensor values = params_.flat_values(ParamGroup(g));
    if (values.defined()) shards_[g].all_gather(values);
  }
}

namespace {
// Sum of v over a group (v itself without one).
double sum_over(parallel::Communicator* group, double v) {
  return parallel::sum_over_ranks({v}, group)[0];
}
}  // namespace

double global_grad_norm(const ParameterRegistry& params, parallel::Communicator* expert_group,
                        parallel::Communicator* tensor_group) {
  return global_grad_norm(params, HeldGradients::whole(params), expert_group, tensor_group);
}

double global_grad_norm(const ParameterRegistry& params, const HeldGradients& held,
                        parallel::Communicator* expert_group, parallel::Communicator* tensor_group) {
  double squares[kNumParamGroups] = {};
  for (int g = 0; g < kNumParamGroups; ++g)
    if (held.grads[g].defined()) squares[g] = ops::reduce(ReduceOp::SumSquares, held.grads[g]);
  constexpr int kDense = int(ParamGroup::Dense), kExpert = int(ParamGroup::Expert);
  double& dense = squares[kDense];
  if (tensor_group && tensor_group->size() > 1) {  // dense = replicated + the shards of every tensor rank
    double shards = 0;
    for (const Parameter& p : params.all()) {
      if (p.group() != ParamGroup::Dense || p.tags.tp_split_dim < 0) continue;
      Tensor part = held.part(p);
      if (part.defined()) shards += ops::reduce(ReduceOp::SumSquares, part);
    }
    double replicated = sum_over(held.partition[kDense], dense - shards);  // (collectives in this order)
    shards = sum_over(held.partition[kDense], shards);
    dense = replicated + sum_over(tensor_group, shards);
  } else {
    dense = sum_over(held.partition[kDense], dense);
  }
  double& experts = squares[kExpert];
  experts = sum_over(expert_group, sum_over(held.partition[kExpert], experts));
  double sum = 0;
  for (double s : squares) sum += s;
  return std::sqrt(sum);
}

double clip_grad_norm(ParameterRegistry& params, double max_norm, parallel::Communicator* expert_group,
                      parallel::Communicator* tensor_group) {
  double norm = global_grad_norm(params, expert_group, tensor_group);
  clip_grad_norm(HeldGradients::whole(params), max_norm, norm);
  return norm;
}

namespace {
void scale_gradients(const HeldGradients& held, double factor) {
  for (Tensor grads : held.grads)
    if (grads.defined()) ops::scale_(grads, factor);
}
}  // namespace

void clip_grad_norm(const HeldGradients& held, double max_norm, double norm) {
  if (max_norm > 0 && std::isfinite(norm) && norm > max_norm) scale_gradients(held, max_norm / (norm + 1e-6));
}

void unscale_gradients(const HeldGradients& held, double scale) {
  if (scale != 1.0) scale_gradients(held, 1.0 / scale);
}

LrSchedule::LrSchedule(const TrainConfig& cfg, int64_t train_iters) {
  v_.max_lr = cfg.lr;
  v_.min_lr = cfg.min_lr;
  v_.style = cfg.lr_decay_style;
  v_.by_tokens = cfg.lr_decay_tokens > 0;
  if (v_.by_tokens) {
    v_.decay = double(cfg.lr_decay_tokens);
    v_.warmup = cfg.lr_warmup_fraction > 0 ? cfg.lr_warmup_fraction * v_.decay : double(cfg.lr_warmup_tokens);
  } else {
    v_.decay = double(cfg.lr_decay_iters > 0 ? cfg.lr_decay_iters : train_iters);
    v_.warmup = cfg.lr_warmup_fraction > 0 ? cfg.lr_warmup_fraction * v_.decay : double(cfg.lr_warmup_iters);
  }
  MT_CHECK(v_.warmup <= v_.decay, "the learning-rate warmup (", v_.warmup, ") is longer than the decay (", v_.decay,
           ")");
}

double LrSchedule::lr(int64_t completed, int64_t tokens) const {
  double n = v_.by_tokens ? double(tokens) : double(completed);
  if (v_.warmup > 0 && n <= v_.warmup) return v_.max_lr * n / v_.warmup;
  if (v_.style == "constant") return v_.max_lr;
  if (n > v_.decay) return v_.min_lr;
  double ratio = v_.decay > v_.warmup ? (n - v_.warmup) / (v_.decay - v_.warmup) : 1.0;
  double coeff = v_.style == "linear" ? 1.0 - ratio : 0.5 * (std::cos(M_PI * ratio) + 1.0);
  return v_.min_lr + coeff * (v_.max_lr - v_.min_lr);
}

namespace {
// Sums of squares and of absolute values, and the largest absolute value, of a host vector.
struct Stats {
  double squares = 0, abs_sum = 0, abs_max = 0;
  void add(double v) {
    squares += v * v;
    abs_sum += std::fabs(v);
    abs_max = std::max(abs_max, std::fabs(v));
  }
};
}  // namespace

OptimizerStateNorms optimizer_state_norms(const ParameterRegistry& params, AdamW& optimizer,
                                          parallel::Communicator* expert_group, parallel::Communicator* tensor_group) {
  // per quantity: [0] what every rank holds alike (replicated dense), [1] this rank's own part
  // (tensor-parallel shards summed over the tensor group, experts over the expert group)
  const char* kinds[4] = {"variance", "variance_sqrt", "momentum", "weight"};
  Stats replicated[4], shards[4], experts[4];
  for (int g = 0; g < kNumParamGroups; ++g) {
    ParamGroup group = ParamGroup(g);
    if (!params.flat_values(group).defined()) continue;
    std::vector<double> v = optimizer.full_moment(AdamW::Moment::ExpAvgSq, group).to_double_vector();
    std::vector<double> m = optimizer.full_moment(AdamW::Moment::ExpAvg, group).to_double_vector();
    std::vector<double> w = params.flat_values(group).to_double_vector();
    for (const Parameter& p : params.all()) {
      if (p.group() != group) continue;
      Stats* into = group == ParamGroup::Expert ? experts : p.tags.tp_split_dim >= 0 ? shards : replicated;
      for (int64_t i = p.offset; i < p.offset + p.var.value().numel(); ++i) {
        into[0].add(v[size_t(i)]);
        into[1].add(std::sqrt(v[size_t(i)]));
        into[2].add(m[size_t(i)]);
        into[3].add(w[size_t(i)]);
      }
    }
  }
  auto over = [](parallel::Communicator* grp, Stats s) {  // sums add up, maxima take the largest
    if (!grp || grp->size() == 1) return s;
    Tensor sums = Tensor::from_vector(std::vector<double>{s.squares, s.abs_sum}, {2});
    Tensor max = Tensor::from_vector(std::vector<double>{s.abs_max}, {1});
    grp->all_reduce(sums, parallel::ReduceKind::Sum);
    grp->all_reduce(max, parallel::ReduceKind::Max);
    return Stats{sums.to_double_vector()[0], sums.to_double_vector()[1], max.to_double_vector()[0]};
  };
  OptimizerStateNorms out;
  for (int k = 0; k < 4; ++k) {
    Stats a = replicated[k], b = over(tensor_group, shards[k]), c = over(expert_group, experts[k]);
    std::string name = kinds[k];
    out.names.insert(out.names.end(), {name + "_l2", name + "_l1", name + "_abs_max"});
    out.values.insert(out.values.end(),
                      {std::sqrt(a.squares + b.squares + c.squares), a.abs_sum + b.abs_sum + c.abs_sum,
                       std::max({a.abs_max, b.abs_max, c.abs_max})});
  }
  return out;
}

int64_t curriculum_seq_length(const TrainConfig& cfg, int64_t step) {
  if (!cfg.curriculum_learning) return cfg.seq_length;
  double lo = double(cfg.curriculum_min_difficulty), hi = double(cfg.curriculum_max_difficulty);
  int64_t d = int64_t(std::floor(double(step) / double(cfg.curriculum_total_step) * (hi - lo) + lo));
  d -= d % cfg.curriculum_difficulty_step;
  return std::min(d, cfg.curriculum_max_difficulty);
}

std::string schedule_differences(const LrScheduleValues& a, const LrScheduleValues& b) {
  std::string out;
  auto add = [&](const std::string& name, const std::string& here, const std::string& there) {
    if (here != there) out += (out.empty() ? "" : "; ") + name + " " + here + " here, " + there + " in the checkpoint";
  };
  auto num = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return std::string(buf);
  };
  std::string unit_a = a.by_tokens ? " tokens" : " iterations", unit_b = b.by_tokens ? " tokens" : " iterations";
  add("lr", num(a.max_lr), num(b.max_lr));
  add("min_lr", num(a.min_lr), num(b.min_lr));
  add("warmup", num(a.warmup) + unit_a, num(b.warmup) + unit_b);
  add("decay", num(a.decay) + unit_a, num(b.decay) + unit_b);
  add("decay style", a.style, b.style);
  return out;
}

}  // namespace mt::train
