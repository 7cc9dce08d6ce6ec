// Parameter registry: tags, groups, flat buffers, views, errors.
#include <catch2/catch.hpp>

#include "autograd/ops.h"
#include "autograd/parameters.h"
#include "test_util.h"

using namespace mt;

TEST_CASE("registry packs dense and expert parameters into flat buffers", "[autograd][parameters]") {
  ParameterRegistry reg;
  Variable w = reg.add("h.0.attn.qkv.weight", testutil::random({6, 4}, DType::F32, 1), ParamTags{}.set_tp_split(0));
  Variable b =
      reg.add("h.0.attn.qkv.bias", testutil::random({6}, DType::F32, 2), ParamTags::no_decay().set_tp_split(0));
  Variable e0 =
      reg.add("h.1.moe.expert.0.fc1.weight", testutil::random({8, 4}, DType::F32, 3), ParamTags{}.set_expert(1, 0));
  Variable e1 =
      reg.add("h.1.moe.expert.1.fc1.weight", testutil::random({8, 4}, DType::F32, 4), ParamTags{}.set_expert(1, 1));
  std::vector<double> w_before = w.value().to_double_vector();

  REQUIRE(reg.numel() == 24 + 6 + 32 + 32);
  REQUIRE(reg.numel(ParamGroup::Dense) == 30);
  REQUIRE(reg.numel(ParamGroup::Expert) == 64);
  REQUIRE(reg.get("h.1.moe.expert.1.fc1.weight").tags.expert->expert == 1);
  REQUIRE_FALSE(reg.get("h.0.attn.qkv.bias").tags.weight_decay);
  REQUIRE(reg.get("h.0.attn.qkv.weight").tags.tp_split_dim == 0);
  REQUIRE(reg.get("h.1.moe.expert.0.fc1.weight").group() == ParamGroup::Expert);

  reg.pack();
  REQUIRE(reg.packed());
  // Values survived, and now live in the flat buffer.
  REQUIRE(w.value().to_double_vector() == w_before);
  REQUIRE(w.value().same_storage(reg.flat_values(ParamGroup::Dense)));
  REQUIRE(e1.value().same_storage(reg.flat_values(ParamGroup::Expert)));
  REQUIRE(reg.get("h.0.attn.qkv.bias").offset % ParameterRegistry::kAlign == 0);
  REQUIRE(reg.flat_values(ParamGroup::Dense).numel() == 32 + 16);  // 24 -> 32, 6 -> 16

  // A backward accumulates straight into the flat gradient buffer.
  Variable x(testutil::random({3, 4}, DType::F32, 5), false);
  Variable y = ag::linear(x, w, b);
  current_tape().backward(y, nullptr);
  std::vector<double> flat = reg.flat_grads(ParamGroup::Dense).to_double_vector();
  REQUIRE(flat[32] == 3.0);  // d bias[0] = number of rows
  REQUIRE(flat[24] == 0.0);  // padding stays zero
  reg.zero_grads();
  REQUIRE(testutil::max_abs(reg.flat_grads(ParamGroup::Dense).to_double_vector()) == 0.0);
}

TEST_CASE("registry errors name the parameter", "[autograd][parameters][errors]") {
  ParameterRegistry reg;
  reg.add("wte", Tensor::zeros({4, 2}, DType::F32));
  REQUIRE_THROWS_WITH(reg.add("wte", Tensor::zeros({1}, DType::F32)), Catch::Contains("'wte' is registered twice"));
  REQUIRE_THROWS_WITH(reg.get("wt"), Catch::Contains("did you mean 'wte'"));
  REQUIRE_THROWS_WITH(reg.add("ids", Tensor::zeros({1}, DType::I32)), Catch::Contains("floating-point"));
  reg.add("wpe", Tensor::zeros({4, 2}, DType::F64));
  REQUIRE_THROWS_WITH(reg.pack(), Catch::Contains("'wpe' is f64[4,2]") && Catch::Contains("'wte'"));
}

TEST_CASE("packed parameters stay on the flat buffers", "[autograd][parameters]") {
  ParameterRegistry reg;
  Variable w = reg.add("w", Tensor::full({4}, 1.0, DType::F64));
  current_tape().backward(ag::scale(w, 3.0));  // a gradient accumulated before pack() survives it
  reg.pack();
  REQUIRE(reg.flat_grads(ParamGroup::Dense).to_double_vector()[0] == 3.0);
  REQUIRE_THROWS_WITH(w.clear_grad(), Catch::Contains("'w'") && Catch::Contains("flat buffer"));
  REQUIRE_THROWS_WITH(w.set_value(Tensor::zeros({4}, DType::F64)), Catch::Contains("copy into value()"));
  reg.zero_grads();
  current_tape().backward(ag::scale(w, 2.0));
  REQUIRE(reg.flat_grads(ParamGroup::Dense).to_double_vector()[1] == 2.0);
}

TEST_CASE("a zeroed flat gradient is written by its first contribution, and reads as zeros unwritten",
          "[autograd][parameters]") {
  // zero_grads() does not fill the flat buffer: the stale elements (NaN here, through a raw view)
  // must never reach a reader, whether a backward wrote the gradient, added to it, or left it alone
  ParameterRegistry reg;
  Variable w = reg.add("w", testutil::random({3, 4}, DType::F32, 1));
  Variable b = reg.add("b", testutil::random({3}, DType::F32, 2));
  Variable unused = reg.add("h.1.moe.expert.0.fc1.weight", testutil::random({2, 4}, DType::F32, 3),
                            ParamTags{}.set_expert(1, 0));
  reg.pack();
  Tensor dense = reg.flat_grads(ParamGroup::Dense), experts = reg.flat_grads(ParamGroup::Expert);
  Variable x(testutil::random({5, 4}, DType::F32, 4), false);
  for (int step = 0; step < 2; ++step) {
    reg.zero_grads();
    for (const Parameter& p : reg.all())  // what the last step left, as far as a reader may know
      (p.group() == ParamGroup::Dense ? dense : experts).narrow(p.offset, p.var.value().numel()).fill_(std::nan(""));
    for (int micro = 0; micro < 2; ++micro) current_tape().backward(ag::linear(x, w, b), nullptr);
    std::vector<double> db = b.grad().to_double_vector(), dw = w.grad().to_double_vector(),
                        xs = x.value().to_double_vector();
    for (double d : db) REQUIRE(d == 10.0);  // two micro-batches of five rows
    for (int o = 0; o < 3; ++o)
      for (int k = 0; k < 4; ++k) {
        double want = 0;
        for (int i = 0; i < 5; ++i) want += 2 * xs[i * 4 + k];
        REQUIRE(dw[o * 4 + k] == Approx(want).epsilon(1e-6));
      }
    REQUIRE(testutil::max_abs(reg.flat_grads(ParamGroup::Expert).to_double_vector()) == 0.0);
    REQUIRE(testutil::max_abs(unused.grad().to_double_vector()) == 0.0);
  }
  // the padding between the gradients is never written: it keeps pack()'s zeros
  reg.zero_grads();
  std::vector<double> flat = reg.flat_grads(ParamGroup::Dense).to_double_vector();
  for (double d : flat) REQUIRE(d == 0.0);
}
