// Activation checkpointing (autograd/checkpoint.h, the GPT model's checkpoint_activations): the
// gradients with it are the same bits as without it, for a small region and for whole models -
// dense with dropout, MoE top-1 with RTS and dropped tokens, RSample, top-2 with second-expert
// sampling, residual (PR-MoE) - one and two layers per region, f32 and bf16 autocast; and 10
// training iterations write byte-identical checkpoints.

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <string>

#include "autograd/autocast.h"
#include "autograd/checkpoint.h"
#include "autograd/ops.h"
#include "autograd/tape.h"
#include "runtime/allocator.h"
#include "runtime/random.h"
#include "train/model_config.h"
#include "train/trainer.h"
#include "train/training_fixtures.h"

using namespace mt;

namespace {

// The bytes of a tensor (exact comparisons: -0 and NaN payloads included).
std::string bytes_of(const Tensor& t) {
  Tensor host = t.to(Device::cpu());
  return std::string(static_cast<const char*>(host.raw()), size_t(host.nbytes()));
}

// A small region: two linears with GELU and dropout between, and a second output (a scalar).
std::vector<Variable> small_region(const std::vector<Variable>& in, const Variable& w1, const Variable& w2) {
  Variable h = ag::dropout(ag::gelu(ag::linear(in[0], w1)), 0.3, rng_key(5, 0, 0, 0));
  Variable y = ag::add(ag::linear(h, w2), in[1]);
  return {y, ag::scale(ag::cross_entropy(y, Tensor::from_vector(std::vector<int32_t>{1, 0, 2}, {3})), 0.5)};
}

}  // namespace

TEST_CASE("a checkpointed region gives the same gradient bits and keeps only its inputs", "[autograd][recompute]") {
  Variable w1(randn({8, 4}, DType::F32, rng_key(1, 0, 0, 0)), true),
      w2(randn({4, 8}, DType::F32, rng_key(2, 0, 0, 0)), true);
  auto run = [&](bool checkpointed, bool use_aux) {
    w1.clear_grad();
    w2.clear_grad();
    Variable x(randn({3, 4}, DType::F32, rng_key(3, 0, 0, 0)), true),
        b(randn({3, 4}, DType::F32, rng_key(4, 0, 0, 0)), true);
    Variable x2 = ag::scale(x, 2.0);  // the region's input has a producer on the outer tape
    auto fn = [&](const std::vector<Variable>& in) { return small_region(in, w1, w2); };
    std::vector<Variable> out = checkpointed ? ag::checkpoint(fn, {x2, b}) : fn({x2, b});
    Variable loss = ag::cross_entropy(ag::gelu(out[0]), Tensor::from_vector(std::vector<int32_t>{3, 1, 1}, {3}));
    if (use_aux) loss = ag::add(loss, out[1]);
    current_tape().backward(loss);
    return bytes_of(w1.grad()) + bytes_of(w2.grad()) + bytes_of(x.grad()) + bytes_of(b.grad());
  };
  REQUIRE(run(true, true) == run(false, true));
  REQUIRE(run(true, false) == run(false, false));  // an output without a gradient

  SECTION("without gradients it is the plain function") {
    NoGradGuard no_grad;
    size_t recorded = current_tape().size();
    Variable x(randn({3, 4}, DType::F32, rng_key(3, 0, 0, 0))), b(randn({3, 4}, DType::F32, rng_key(4, 0, 0, 0)));
    auto fn = [&](const std::vector<Variable>& in) { return small_region(in, w1, w2); };
    REQUIRE(bytes_of(ag::checkpoint(fn, {x, b})[0].value()) == bytes_of(fn({x, b})[0].value()));
    REQUIRE(current_tape().size() == recorded);
  }
  SECTION("the forward holds the inputs, not the intermediates") {
    Allocator& alloc = allocator_for(DeviceType::CPU);
    Variable w(Tensor::full({256, 256}, 0.01, DType::F32), true);
    Variable x(Tensor::full({512, 256}, 0.5, DType::F32), true);  // 512 KiB
    auto deep = [&](const std::vector<Variable>& in) {
      Variable y = in[0];
      for (int i = 0; i < 8; ++i) y = ag::gelu(ag::linear(y, w));
      return std::vector<Variable>{y};
    };
    size_t before = alloc.stats().live_bytes;
    Variable y = ag::checkpoint(deep, {x})[0];
    REQUIRE(alloc.stats().live_bytes - before <= x.value().nbytes() + 4096);  // the output only
    current_tape().backward(ag::cross_entropy(y, Tensor::zeros({512}, DType::I32)));
    REQUIRE(x.grad().defined());
    REQUIRE(w.grad().defined());
  }
}

TEST_CASE("a checkpointed region replays its decisions and says when it recomputes", "[autograd][recompute]") {
  Variable w(Tensor::full({2, 2}, 0.5, DType::F32), true);
  int made = 0;
  std::vector<bool> seen;
  auto fn = [&](const std::vector<Variable>& in) {
    seen.push_back(ag::recomputing());
    int d = ag::checkpoint_decision<int>([&] { return ++made; });
    return std::vector<Variable>{ag::scale(ag::linear(in[0], w), double(d))};
  };
  Variable x(Tensor::full({1, 2}, 1.0, DType::F32), true);
  Variable y = ag::checkpoint(fn, {x})[0];
  current_tape().backward(ag::cross_entropy(y, Tensor::zeros({1}, DType::I32)));
  REQUIRE(made == 1);                                            // the recompute took the forward's decision
  REQUIRE(seen == std::vector<bool>{false, true});               // forward, then recompute
  REQUIRE(ag::checkpoint_decision<int>([] { return 7; }) == 7);  // outside a region: made
}

TEST_CASE("the recompute runs in the forward's precision when the backward is outside its autocast scope",
          "[autograd][recompute][precision]") {
  ParameterRegistry reg;
  Variable w = reg.add("w", randn({16, 16}, DType::F32, rng_key(6, 0, 0, 0)));
  reg.pack();
  auto run = [&](bool checkpointed) {
    reg.zero_grads();
    Variable x(randn({4, 16}, DType::F32, rng_key(7, 0, 0, 0)), true);
    auto fn = [&](const std::vector<Variable>& in) { return std::vector<Variable>{ag::gelu(ag::linear(in[0], w))}; };
    Variable loss;
    {
      ag::Autocast bf16(DType::BF16, &reg);
      std::vector<Variable> out = checkpointed ? ag::checkpoint(fn, {x}) : fn({x});
      loss = ag::cross_entropy(out[0], Tensor::zeros({4}, DType::I32));
    }
    current_tape().backward(loss);  // after the scope closed
    return bytes_of(reg.flat_grads(ParamGroup::Dense)) + bytes_of(x.grad());
  };
  REQUIRE(run(true) == run(false));
}

namespace {

// Model variants for the bit-identical gradient tests.
struct Variant {
  const char* name;
  std::vector<std::string> num_experts;
  int64_t topk = 1;
  std::string mlp_type = "standard", noise = "None";
};

// Flat gradients (dense then expert), the losses and the MoE loads of one forward and backward of
// the model `cfg` describes on a fixed batch, with dropout on; and the functions the forward recorded.
struct Bits {
  std::string bits;
  size_t recorded = 0;
};
Bits gradient_bits(train::TrainConfig cfg, DType compute) {
  std::unique_ptr<nn::GptModel> model = train::make_model(cfg, 100);
  ParameterRegistry& reg = model->parameters();
  for (const Parameter& p : reg.all())  // each expert its own weights (they start as copies)
    if (p.tags.expert) {
      float* d = p.var.value().data<float>();
      for (int64_t i = 0; i < p.var.value().numel(); ++i)
        d[i] += 0.02f * float(std::sin(double(i + 7 * p.tags.expert->expert)));
    }
  int64_t b = 2, t = cfg.seq_length;
  Tensor tokens = Tensor::empty({b, t}, DType::I32), labels = Tensor::empty({b, t}, DType::I32);
  for (int64_t i = 0; i < b * t; ++i) {
    tokens.data<int32_t>()[i] = int32_t((i * 37 + 11) % 100);
    labels.data<int32_t>()[i] = int32_t((i * 53 + 3) % 100);
  }
  reg.zero_grads();
  ag::Autocast autocast(compute, &reg);
  nn::LossParts parts = model->loss_parts(tokens, labels, Tensor(), {true, 40});
  size_t recorded = current_tape().size();
  current_tape().backward(parts.total);
  std::string out = bytes_of(reg.flat_grads(ParamGroup::Dense));
  if (reg.numel(ParamGroup::Expert) > 0) out += bytes_of(reg.flat_grads(ParamGroup::Expert));
  out += bytes_of(parts.total.value());
  for (const nn::LayerLoadStats& l : parts.layers) {
    for (int64_t c : l.expert_counts) out += std::to_string(c) + ",";
    out += std::to_string(l.layer) + ":" + std::to_string(l.dropped) + ":" + std::to_string(l.aux_loss) + ":" +
           std::to_string(l.entropy) + ";";
  }
  return {out, recorded};
}

}  // namespace

TEST_CASE("a model's gradients with activation checkpointing are the same bits as without",
          "[autograd][recompute][model]") {
  Variant variants[] = {
      {"dense", {"1"}},
      {"top-1, RTS, dropped tokens", {"4"}},
      {"top-1, RSample", {"4"}, 1, "standard", "RSample"},
      {"top-2, second-expert sampling, Jitter", {"4"}, 2, "standard", "Jitter"},
      {"residual (PR-MoE, pyramid)", {"2", "4"}, 1, "residual"},
  };
  for (const Variant& v : variants)
    for (DType compute : {DType::F32, DType::BF16}) {
      train::TrainConfig cfg;
      cfg.num_layers = 3;
      cfg.hidden_size = 16;
      cfg.num_attention_heads = 2;
      cfg.seq_length = 12;
      cfg.hidden_dropout = 0.1;
      cfg.attention_dropout = 0.2;
      cfg.init_method_std = 0.1;
      cfg.num_experts = v.num_experts;
      cfg.expert_interval = v.num_experts.size() > 1 ? 2 : 1;  // pyramid: layers 2 and 4 hold 2 and 4
      if (v.num_experts.size() > 1) cfg.num_layers = 4;
      cfg.topk = v.topk;
      cfg.mlp_type = v.mlp_type;
      cfg.noisy_gate_policy = v.noise;
      cfg.moe_train_capacity_factor = 0.5;  // 24 tokens, 4 experts: capacity 4, some dropped
      cfg.moe_min_capacity = 2;
      cfg.moe_loss_coeff = 0.01;
      Bits plain = gradient_bits(cfg, compute);
      for (int64_t per_region : {1, 2}) {
        INFO(v.name << ", " << dtype_name(compute) << ", checkpoint_num_layers " << per_region);
        train::TrainConfig ck = cfg;
        ck.checkpoint_activations = true;
        ck.checkpoint_num_layers = per_region;
        Bits recomputed = gradient_bits(ck, compute);
        REQUIRE(recomputed.bits == plain.bits);
        REQUIRE(recomputed.recorded < plain.recorded / 2);  // the layers' functions were not recorded
      }
    }
  REQUIRE(current_tape().size() == 0);  // every recorded function ran or was dropped
}

TEST_CASE("training with activation checkpointing writes the same checkpoint bytes",
          "[autograd][recompute][train][slow]") {
  using namespace trainfix;
  for (bool moe : {false, true}) {
    INFO((moe ? "PR-MoE top-2, bf16" : "dense, f32"));
    fs::path plain = fresh_dir("recompute_plain"), recomputed = fresh_dir("recompute_on");
    auto config = [&](const fs::path& d, bool checkpointed) {
      TrainConfig c = tiny_run(d);
      c.train_iters = 10;
      c.eval_interval = 10;
      if (moe) {
        c.num_experts = {"4"};
        c.mlp_type = "residual";
        c.topk = 2;
        c.precision = "bf16";
      }
      // DeepSpeed's switch for the MoE run, Megatron's for the dense one (the same thing)
      (moe ? c.deepspeed_activation_checkpointing : c.checkpoint_activations) = checkpointed;
      return c;
    };
    train::run_training(config(plain, false), quiet_options());
    train::run_training(config(recomputed, true), quiet_options());
    for (const char* file : {"model.safetensors", "optimizer.safetensors"})
      REQUIRE(slurp(plain / "ckpt" / "iter_0000010" / file) == slurp(recomputed / "ckpt" / "iter_0000010" / file));
    REQUIRE(train_losses(plain / "metrics.jsonl") == train_losses(recomputed / "metrics.jsonl"));
    fs::remove_all(plain);
    fs::remove_all(recomputed);
  }
}
