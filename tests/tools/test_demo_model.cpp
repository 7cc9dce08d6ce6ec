// The demo's byte-level GPT as an end-to-end check of the foundation: gradients of the whole
// model (tied embeddings, residuals, every op composed) against finite differences, and a short
// training run that must learn and be bit-reproducible.
#include <catch2/catch.hpp>

#include "autograd/gradcheck.h"
#include "tools/demo/byte_gpt_trainer.h"

using namespace mt;

TEST_CASE("byte GPT loss gradients match finite differences for every parameter", "[tools][demo][gradcheck]") {
  demo::ByteGptConfig cfg;
  cfg.vocab = 13;
  cfg.seq_len = 6;
  cfg.layers = 2;
  cfg.hidden = 8;
  cfg.heads = 2;
  cfg.dtype = DType::F64;
  demo::ByteGpt model(cfg);
  // Larger weights than the 0.02 init, so that every path carries a gradient well above noise
  // (much larger, and the finite differences' own truncation error, eps^2 times the third
  // derivative, shows up: at 20x it reaches 2e-4).
  for (const Parameter& p : model.parameters().all()) {
    std::vector<double> v = p.var.value().to_double_vector();
    double* data = p.var.value().data<double>();
    for (size_t i = 0; i < v.size(); ++i) data[i] = v[i] * 3.0 + 0.05 * double(i % 7);
  }
  Tensor tokens = Tensor::from_vector(std::vector<int32_t>{1, 5, 7, 2, 12, 0, 3, 3, 9, 4, 11, 6}, {2, 6});
  Tensor targets = Tensor::from_vector(std::vector<int32_t>{5, 7, 2, 12, 0, 8, 3, 9, 4, 11, 6, 1}, {2, 6});
  std::vector<Variable> params;
  int64_t expected_entries = 0;
  for (const Parameter& p : model.parameters().all()) {
    params.push_back(p.var);
    expected_entries += std::min<int64_t>(12, p.var.value().numel());
  }
  GradcheckOptions opt;
  opt.max_entries_per_input = 12;
  GradcheckResult r =
      gradcheck([&](const std::vector<Variable>&) { return model.loss(tokens, targets); }, params, opt);
  INFO(r.summary());
  REQUIRE(r.entries_checked == expected_entries);
  REQUIRE(r.ok);
}

TEST_CASE("demo training lowers the validation loss and is bit-reproducible", "[tools][demo][training]") {
  std::string text = demo::read_text_file(MOETRAIN_SOURCE_DIR "/assets/tinyshakespeare/input.txt", 10000);
  demo::ByteGptConfig cfg;
  cfg.layers = 2;
  cfg.hidden = 64;
  cfg.seq_len = 32;
  demo::TrainOptions opt;
  opt.steps = 150;
  opt.batch = 16;
  opt.warmup = 10;
  opt.eval_interval = 150;
  demo::TrainReport runs[2];
  for (demo::TrainReport& report : runs) {
    demo::ByteGpt model(cfg);
    demo::ByteGptTrainer trainer(model, text, opt);
    report = trainer.train();
  }
  INFO("validation loss " << runs[0].initial_val_loss << " -> " << runs[0].final_val_loss);
  REQUIRE(runs[0].initial_val_loss == Approx(std::log(256.0)).margin(0.1));
  // 3.31 nats is the entropy of the text's byte frequencies: below it, the model uses context.
  REQUIRE(runs[0].final_val_loss < 2.8);
  REQUIRE(runs[0].losses == runs[1].losses);
  REQUIRE(runs[0].final_val_loss == runs[1].final_val_loss);
}

TEST_CASE("demo errors name the file", "[tools][demo][errors]") {
  REQUIRE_THROWS_WITH(demo::read_text_file("/nonexistent/input.txt", 10), Catch::Contains("'/nonexistent/input.txt'"));
}
