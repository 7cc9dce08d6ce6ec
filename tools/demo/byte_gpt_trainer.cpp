#include "tools/demo/byte_gpt_trainer.h"

#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "autograd/tape.h"
#include "runtime/ops.h"

namespace mt::demo {
namespace {
double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

std::string read_text_file(const std::string& path, size_t min_bytes) {
  std::ifstream in(path, std::ios::binary);
  MT_CHECK(in, "cannot read '", path, "': pass a text file with --data FILE");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  MT_CHECK(s.size() >= min_bytes, "'", path, "' holds ", s.size(), " bytes; at least ", min_bytes, " are needed");
  return s;
}

ByteGptTrainer::ByteGptTrainer(ByteGpt& model, std::string text, TrainOptions options)
    : model_(model), text_(std::move(text)), opt_(options), split_(text_.size() * 9 / 10) {
  int64_t t_len = model.config().seq_len;
  MT_CHECK(text_.size() - split_ > size_t(t_len) + 1, "the text is too short for context ", t_len);
  MT_CHECK(model.config().dtype == DType::F32, "the demo trainer runs in f32");
  const ParameterRegistry& reg = model.parameters();
  int64_t n = reg.flat_values(ParamGroup::Dense).numel();
  m_.assign(size_t(n), 0.0f);
  v_.assign(size_t(n), 0.0f);
  decay_.assign(size_t(n), 0);
  for (const Parameter& p : reg.all())
    if (p.tags.weight_decay) std::fill(decay_.begin() + p.offset, decay_.begin() + p.offset + p.var.value().numel(), 1);
}

// Tokens [B,T] and next-byte targets [B,T] from random windows of text[lo, hi); the windows are
// a function of the key only.
void ByteGptTrainer::sample_batch(size_t lo, size_t hi, RngKey key, Tensor& tokens, Tensor& targets) const {
  int64_t batch = opt_.batch, t_len = model_.config().seq_len;
  tokens = Tensor::empty({batch, t_len}, DType::I32);
  targets = Tensor::empty({batch, t_len}, DType::I32);
  for (int64_t b = 0; b < batch; ++b) {
    size_t start = lo + philox4x32(key, uint64_t(b)).v[0] % (hi - lo - size_t(t_len) - 1);
    for (int64_t t = 0; t < t_len; ++t) {
      tokens.data<int32_t>()[b * t_len + t] = uint8_t(text_[start + t]);
      targets.data<int32_t>()[b * t_len + t] = uint8_t(text_[start + t + 1]);
    }
  }
}

double ByteGptTrainer::learning_rate(int64_t step) const {
  if (step <= opt_.warmup) return opt_.lr * double(step) / double(opt_.warmup);
  double progress = double(step - opt_.warmup) / double(std::max<int64_t>(opt_.steps - opt_.warmup, 1));
  return opt_.min_lr + 0.5 * (opt_.lr - opt_.min_lr) * (1 + std::cos(M_PI * std::min(progress, 1.0)));
}

// AdamW (betas 0.9, 0.95) over the flat dense buffers; decoupled weight decay where tagged.
void ByteGptTrainer::adamw_step(double lr) {
  const double b1 = 0.9, b2 = 0.95, eps = 1e-8;
  ++adam_steps_;
  ParameterRegistry& reg = model_.parameters();
  float* w = reg.flat_values(ParamGroup::Dense).data<float>();
  const float* g = reg.flat_grads(ParamGroup::Dense).data<float>();
  double c1 = 1 - std::pow(b1, double(adam_steps_)), c2 = 1 - std::pow(b2, double(adam_steps_));
  for (size_t i = 0; i < m_.size(); ++i) {
    m_[i] = float(b1 * m_[i] + (1 - b1) * g[i]);
    v_[i] = float(b2 * v_[i] + (1 - b2) * double(g[i]) * g[i]);
    double update = (m_[i] / c1) / (std::sqrt(v_[i] / c2) + eps) + (decay_[i] ? opt_.weight_decay * w[i] : 0.0);
    w[i] = float(w[i] - lr * update);
  }
}

double ByteGptTrainer::validation_loss() const {
  NoGradGuard no_grad;
  double total = 0;
  for (int64_t i = 0; i < opt_.eval_batches; ++i) {
    Tensor tokens, targets;
    sample_batch(split_, text_.size(), rng_key(opt_.seed, uint64_t(i), 0, 3), tokens, targets);
    total += model_.loss(tokens, targets).value().item();
  }
  return total / double(opt_.eval_batches);
}

TrainReport ByteGptTrainer::train(const std::function<void(const StepLog&)>& on_log,
                                  const std::function<void(int64_t, double)>& on_eval) {
  TrainReport report;
  report.initial_val_loss = validation_loss();
  if (on_eval) on_eval(0, report.initial_val_loss);
  ParameterRegistry& reg = model_.parameters();
  double interval_seconds = 0;
  for (int64_t step = 1; step <= opt_.steps; ++step) {
    double t0 = now_seconds(), lr = learning_rate(step);
    Tensor tokens, targets;
    sample_batch(0, split_, rng_key(opt_.seed, uint64_t(step), 0, 2), tokens, targets);
    reg.zero_grads();
    Variable loss = model_.loss(tokens, targets);
    current_tape().backward(loss);
    Tensor grads = reg.flat_grads(ParamGroup::Dense);  // a view: scaling it scales every gradient
    double norm = std::sqrt(ops::reduce(ReduceOp::SumSquares, grads));
    MT_CHECK(std::isfinite(norm), "step ", step, ": the gradient norm is ", norm,
             " (the loss diverged); lower the learning rate or check the data");
    if (norm > opt_.clip) ops::scale_(grads, opt_.clip / norm);
    adamw_step(lr);
    double dt = now_seconds() - t0;
    report.train_seconds += dt;
    interval_seconds += dt;
    report.losses.push_back(loss.value().item());
    if (on_log && (step % opt_.log_interval == 0 || step == opt_.steps)) {
      int64_t steps_in_interval = (step - 1) % opt_.log_interval + 1;
      double tok_s = double(steps_in_interval * opt_.batch * model_.config().seq_len) / interval_seconds;
      on_log({step, report.losses.back(), lr, norm, tok_s});
      interval_seconds = 0;
    }
    if (step % opt_.eval_interval == 0 || step == opt_.steps) {
      double val = validation_loss();
      report.final_val_loss = val;
      if (on_eval) on_eval(step, val);
    }
  }
  report.tokens_per_s = double(opt_.steps * opt_.batch * model_.config().seq_len) / report.train_seconds;
  return report;
}

std::string generate(const ByteGpt& model, const std::string& prompt, int64_t n, double temperature, uint64_t seed) {
  MT_CHECK(!prompt.empty(), "generate: the prompt must hold at least one byte");
  MT_CHECK(temperature > 0, "generate: temperature must be positive, got ", temperature);
  NoGradGuard no_grad;
  std::string out = prompt;
  int64_t t_len = model.config().seq_len, vocab = model.config().vocab;
  std::vector<double> p(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < n; ++i) {
    std::string ctx = out.substr(out.size() > size_t(t_len) ? out.size() - size_t(t_len) : 0);
    Tensor tokens = Tensor::empty({1, int64_t(ctx.size())}, DType::I32);
    for (size_t t = 0; t < ctx.size(); ++t) tokens.data<int32_t>()[t] = uint8_t(ctx[t]);
    std::vector<double> logits = model.logits(tokens).value().to_double_vector();
    const double* last = logits.data() + (int64_t(ctx.size()) - 1) * vocab;
    double mx = -1e300, sum = 0;
    for (int64_t v = 0; v < vocab; ++v) mx = std::max(mx, last[v] / temperature);
    for (int64_t v = 0; v < vocab; ++v) sum += (p[v] = std::exp(last[v] / temperature - mx));
    double u = uniform_at(rng_key(seed, uint64_t(i), 0, 4), 0) * sum;
    int64_t pick = 0;
    while (pick < vocab - 1 && (u -= p[pick]) > 0) ++pick;
    out.push_back(char(pick));
  }
  return out;
}

std::string printable(std::string s) {
  for (char& ch : s)
    if (ch != '\n' && (uint8_t(ch) < 32 || uint8_t(ch) > 126)) ch = '?';
  return s;
}

}  // namespace mt::demo
