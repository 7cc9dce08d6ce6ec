// `moetrain demo`: trains the byte-level GPT of byte_gpt.h on bundled Tiny Shakespeare on the CPU
// and prints what it learned (a sample before and after training). Everything it uses is the
// foundation: tensors, CPU kernels, the tape, hand-written backward passes, the parameter
// registry's flat buffers (AdamW and clipping run over them as flat loops).
#include <cmath>
#include <cstdio>
#include <string>

#include "tools/args.h"
#include "tools/command.h"
#include "tools/demo/byte_gpt_trainer.h"

namespace mt::cli {

int run_demo(const Args& args) {
  demo::ByteGptConfig cfg;
  demo::TrainOptions opt;
  ArgParser p("demo", {"steps", "data", "seed"}, {"help"});
  p.parse(args);
  if (p.flag("help")) {
    std::printf(
        "usage: moetrain demo [--steps N] [--data FILE] [--seed S]\n\n"
        "Trains a small byte-level GPT (3 layers, hidden 128, 4 heads, context 64) on a text file\n"
        "(default: the bundled Tiny Shakespeare) on the CPU and prints samples before and after.\n");
    return 0;
  }
  opt.steps = p.get_int("steps", opt.steps);
  opt.seed = cfg.seed = uint64_t(p.get_int("seed", int64_t(opt.seed)));
  std::string data = p.get("data", MOETRAIN_SOURCE_DIR "/assets/tinyshakespeare/input.txt");
  MT_CHECK(opt.steps > 0, "--steps must be positive, got ", opt.steps);
  std::string text = demo::read_text_file(data, 10000);
  demo::ByteGpt model(cfg);
  demo::ByteGptTrainer trainer(model, text, opt);
  std::printf("moetrain demo: byte-level GPT, %lld layers, hidden %lld, %lld heads, context %lld, %.2fM parameters\n",
              (long long)cfg.layers, (long long)cfg.hidden, (long long)cfg.heads, (long long)cfg.seq_len,
              double(model.parameters().numel()) / 1e6);
  std::printf("data: %s (%zu bytes: %zu train, %zu validation)\n\n", data.c_str(), text.size(),
              trainer.train_bytes(), text.size() - trainer.train_bytes());
  const std::string prompt = "ROMEO:\n";
  std::printf("--- sample before training ---\n%s\n\n",
              demo::printable(demo::generate(model, prompt, 120, 0.8, opt.seed)).c_str());
  std::printf("uniform guess over 256 bytes: loss %.3f\n", std::log(256.0));

  demo::TrainReport report = trainer.train(
      [](const demo::StepLog& s) {
        std::printf("step %4lld | loss %.3f | lr %.2e | grad norm %.2f | %.0f tokens/s\n", (long long)s.step, s.loss,
                    s.lr, s.grad_norm, s.tokens_per_s);
        std::fflush(stdout);
      },
      [](int64_t step, double val) {
        std::printf("step %4lld | validation loss %.3f\n", (long long)step, val);
        std::fflush(stdout);
      });
  double flops = model.train_flops_per_token();
  std::printf("\ntrained %lld steps in %.1f s: %.0f tokens/s, %.1f GFLOP/s of model math (%.2f MFLOP per token)\n",
              (long long)opt.steps, report.train_seconds, report.tokens_per_s, report.tokens_per_s * flops * 1e-9,
              flops * 1e-6);
  std::printf("\n--- sample after training ---\n%s\n",
              demo::printable(demo::generate(model, prompt, 400, 0.8, opt.seed)).c_str());
  return 0;
}

}  // namespace mt::cli
