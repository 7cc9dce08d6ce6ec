// `moetrain demo`: trains the byte-level GPT of byte_gpt.h on bundled Tiny Shakespeare on the CPU
// and prints what it learned (a sample before and after training). Everything it uses is the
// foundation: tensors, CPU kernels, the tape, hand-written backward passes, the parameter
// registry's flat buffers (AdamW and clipping run over them as two flat loops).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "autograd/ops.h"
#include "runtime/ops.h"
#include "tools/bench/timer.h"
#include "tools/command.h"
#include "tools/demo/byte_gpt.h"

namespace mt::cli {
namespace {

struct DemoOptions {
  int64_t steps = 600, batch = 32, log_interval = 50, eval_interval = 200, sample_bytes = 400;
  double lr = 3e-3, min_lr = 3e-4, weight_decay = 0.1, clip = 1.0;
  int64_t warmup = 30;
  uint64_t seed = 1234;
  std::string data = MOETRAIN_SOURCE_DIR "/assets/tinyshakespeare/input.txt";
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MT_CHECK(in, "cannot read '", path, "': pass a text file with --data FILE");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  MT_CHECK(s.size() > 10000, "'", path, "' holds ", s.size(), " bytes; the demo needs at least 10000");
  return s;
}

// Tokens [B,T] and next-byte targets [B,T] from random windows of text[lo, hi); the windows are
// a function of (seed, step, stream) only.
void sample_batch(const std::string& text, size_t lo, size_t hi, int64_t batch, int64_t t_len, RngKey key,
                  Tensor& tokens, Tensor& targets) {
  tokens = Tensor::empty({batch, t_len}, DType::I32);
  targets = Tensor::empty({batch, t_len}, DType::I32);
  for (int64_t b = 0; b < batch; ++b) {
    size_t start = lo + philox4x32(key, uint64_t(b)).v[0] % (hi - lo - size_t(t_len) - 1);
    for (int64_t t = 0; t < t_len; ++t) {
      tokens.data<int32_t>()[b * t_len + t] = uint8_t(text[start + t]);
      targets.data<int32_t>()[b * t_len + t] = uint8_t(text[start + t + 1]);
    }
  }
}

// AdamW over the registry's flat dense buffers; `decay` marks the entries that get weight decay.
class FlatAdamW {
 public:
  explicit FlatAdamW(ParameterRegistry& reg) : reg_(reg) {
    int64_t n = reg.flat_values(ParamGroup::Dense).numel();
    m_.assign(size_t(n), 0.0f);
    v_.assign(size_t(n), 0.0f);
    decay_.assign(size_t(n), 0);
    for (const Parameter& p : reg.all())
      if (p.tags.weight_decay)
        std::fill(decay_.begin() + p.offset, decay_.begin() + p.offset + p.var.value().numel(), 1);
  }
  void step(double lr, double wd, double b1 = 0.9, double b2 = 0.95, double eps = 1e-8) {
    ++t_;
    float* w = reg_.flat_values(ParamGroup::Dense).data<float>();
    const float* g = reg_.flat_grads(ParamGroup::Dense).data<float>();
    double c1 = 1 - std::pow(b1, double(t_)), c2 = 1 - std::pow(b2, double(t_));
    for (size_t i = 0; i < m_.size(); ++i) {
      m_[i] = float(b1 * m_[i] + (1 - b1) * g[i]);
      v_[i] = float(b2 * v_[i] + (1 - b2) * double(g[i]) * g[i]);
      double update = (m_[i] / c1) / (std::sqrt(v_[i] / c2) + eps) + (decay_[i] ? wd * w[i] : 0.0);
      w[i] = float(w[i] - lr * update);
    }
  }

 private:
  ParameterRegistry& reg_;
  std::vector<float> m_, v_;
  std::vector<uint8_t> decay_;
  int64_t t_ = 0;
};

double eval_loss(const demo::ByteGpt& model, const std::string& text, size_t lo, size_t hi, int64_t batch,
                 uint64_t seed) {
  NoGradGuard no_grad;
  double total = 0;
  const int batches = 4;
  for (int i = 0; i < batches; ++i) {
    Tensor tokens, targets;
    sample_batch(text, lo, hi, batch, model.config().seq_len, rng_key(seed, uint64_t(i), 0, 3), tokens, targets);
    total += model.loss(tokens, targets).value().item();
  }
  return total / batches;
}

// Bytes a terminal shows as themselves (an untrained model emits any byte): others become '?'.
std::string printable(std::string s) {
  for (char& ch : s)
    if (ch != '\n' && (uint8_t(ch) < 32 || uint8_t(ch) > 126)) ch = '?';
  return s;
}

// Continues `prompt` byte by byte, sampling from softmax(logits / temperature).
std::string generate(const demo::ByteGpt& model, const std::string& prompt, int64_t n, double temperature,
                     uint64_t seed) {
  NoGradGuard no_grad;
  std::string out = prompt;
  int64_t t_len = model.config().seq_len, vocab = model.config().vocab;
  for (int64_t i = 0; i < n; ++i) {
    std::string ctx = out.substr(out.size() > size_t(t_len) ? out.size() - size_t(t_len) : 0);
    Tensor tokens = Tensor::empty({1, int64_t(ctx.size())}, DType::I32);
    for (size_t t = 0; t < ctx.size(); ++t) tokens.data<int32_t>()[t] = uint8_t(ctx[t]);
    Tensor logits = model.logits(tokens).value();
    const float* last = logits.data<float>() + (int64_t(ctx.size()) - 1) * vocab;
    double mx = -1e30, sum = 0;
    for (int64_t v = 0; v < vocab; ++v) mx = std::max(mx, double(last[v]) / temperature);
    std::vector<double> p(static_cast<size_t>(vocab));
    for (int64_t v = 0; v < vocab; ++v) sum += (p[v] = std::exp(double(last[v]) / temperature - mx));
    double u = uniform_at(rng_key(seed, uint64_t(i), 0, 4), 0) * sum;
    int64_t pick = 0;
    while (pick < vocab - 1 && (u -= p[pick]) > 0) ++pick;
    out.push_back(char(pick));
  }
  return out;
}

}  // namespace

int run_demo(const Args& args) {
  DemoOptions o;
  demo::ByteGptConfig cfg;
  for (size_t i = 0; i < args.size(); ++i) {
    auto value = [&]() -> std::string {
      MT_CHECK(i + 1 < args.size(), "demo: ", args[i], " needs a value");
      return args[++i];
    };
    if (args[i] == "--steps")
      o.steps = std::stoll(value());
    else if (args[i] == "--data")
      o.data = value();
    else if (args[i] == "--seed")
      o.seed = cfg.seed = std::stoull(value());
    else if (args[i] == "--help" || args[i] == "-h") {
      std::printf(
          "usage: moetrain demo [--steps N] [--data FILE] [--seed S]\n\n"
          "Trains a small byte-level GPT (3 layers, hidden 128, 4 heads, context 64) on a text file\n"
          "(default: the bundled Tiny Shakespeare) on the CPU and prints samples before and after.\n");
      return 0;
    } else {
      throw Error("demo: unknown option '" + args[i] + "'; see `moetrain demo --help`");
    }
  }
  MT_CHECK(o.steps > 0, "demo: --steps must be positive");
  std::string text = read_file(o.data);
  size_t split = text.size() * 9 / 10;
  demo::ByteGpt model(cfg);
  FlatAdamW adam(model.parameters());
  std::printf("moetrain demo: byte-level GPT, %lld layers, hidden %lld, %lld heads, context %lld, %.2fM parameters\n",
              (long long)cfg.layers, (long long)cfg.hidden, (long long)cfg.heads, (long long)cfg.seq_len,
              double(model.parameters().numel()) / 1e6);
  std::printf("data: %s (%zu bytes: %zu train, %zu validation)\n\n", o.data.c_str(), text.size(), split,
              text.size() - split);
  const std::string prompt = "ROMEO:\n";
  std::printf("--- sample before training ---\n%s\n\n", printable(generate(model, prompt, 120, 0.8, o.seed)).c_str());
  std::printf("step %4d | validation loss %.3f (uniform guess: %.3f)\n", 0,
              eval_loss(model, text, split, text.size(), o.batch, o.seed), std::log(256.0));

  double t_start = bench::now_seconds(), t_log = t_start, train_seconds = 0;
  for (int64_t step = 1; step <= o.steps; ++step) {
    double lr = step <= o.warmup
                    ? o.lr * double(step) / double(o.warmup)
                    : o.min_lr + 0.5 * (o.lr - o.min_lr) *
                                     (1 + std::cos(M_PI * double(step - o.warmup) / double(o.steps - o.warmup)));
    double t_step = bench::now_seconds();
    Tensor tokens, targets;
    sample_batch(text, 0, split, o.batch, cfg.seq_len, rng_key(o.seed, uint64_t(step), 0, 2), tokens, targets);
    model.parameters().zero_grads();
    Variable loss = model.loss(tokens, targets);
    current_tape().backward(loss);
    Tensor grads = model.parameters().flat_grads(ParamGroup::Dense);  // a view: scaling it scales the grads
    double norm = std::sqrt(ops::reduce(ReduceOp::SumSquares, grads));
    if (norm > o.clip) ops::scale_(grads, o.clip / norm);
    adam.step(lr, o.weight_decay);
    train_seconds += bench::now_seconds() - t_step;
    if (step % o.log_interval == 0 || step == o.steps) {
      double now = bench::now_seconds();
      double tok_s = double(o.log_interval * o.batch * cfg.seq_len) / (now - t_log);
      t_log = now;
      std::printf("step %4lld | loss %.3f | lr %.2e | grad norm %.2f | %.0f tokens/s\n", (long long)step,
                  loss.value().item(), lr, norm, tok_s);
    }
    if (step % o.eval_interval == 0 || step == o.steps)
      std::printf("step %4lld | validation loss %.3f\n", (long long)step,
                  eval_loss(model, text, split, text.size(), o.batch, o.seed));
    std::fflush(stdout);
  }
  double tokens_per_s = double(o.steps * o.batch * cfg.seq_len) / train_seconds;
  std::printf("\ntrained %lld steps in %.1f s: %.0f tokens/s, %.1f GFLOP/s of model math (%.2f MFLOP per token)\n",
              (long long)o.steps, bench::now_seconds() - t_start, tokens_per_s,
              tokens_per_s * model.train_flops_per_token() * 1e-9, model.train_flops_per_token() * 1e-6);
  std::printf("\n--- sample after training ---\n%s\n",
              printable(generate(model, prompt, o.sample_bytes, 0.8, o.seed)).c_str());
  return 0;
}

}  // namespace mt::cli
