// Tensor parallelism equals one process: the GPT model with its heads, MLP columns and vocabulary
// split over all ranks (tp = world size: 2 or 4) and the same model in one piece, on the same
// tokens, in float64 with hidden and attention dropout on and an MoE layer (run whole on every
// tensor rank). Checked on every rank: the loss, and every parameter's gradient against the
// single-process gradient (this rank's shard of it, cut as parallel/shards.h cuts the weights).
#include <catch2/catch.hpp>

#include "autograd/tape.h"
#include "moe/moe_feed_forward.h"
#include "nn/gpt.h"
#include "parallel/shards.h"
#include "runtime/random.h"
#include "test_util.h"
#include "tiny_gpt.h"

using namespace mt;

namespace {

nn::GptConfig small_gpt(parallel::Communicator* tensor_group) {
  nn::GptConfig c = testutil::tiny_gpt();
  c.num_attention_heads = 4;
  c.max_position_embeddings = 8;
  c.hidden_dropout = 0.1;
  c.attention_dropout = 0.1;
  c.tensor_group = tensor_group;
  return c;
}

// Layer 1 is an MoE layer (4 experts, top-2, dropless), layer 0 the dense MLP.
nn::FeedForwardFactory moe_at_layer_1(const nn::GptConfig& mc) {
  return [mc](ParameterRegistry& params, const std::string& prefix, int64_t layer) -> std::unique_ptr<nn::FeedForward> {
    if (layer == 0)
      return std::make_unique<nn::DenseMlp>(params, prefix, mc.hidden_size, mc.ffn_hidden_size, mc.init_method_std,
                                            mc.init_method_std, rng_key(7, 0, 1, 0), mc.dtype, mc.tensor_group);
    moe::MoeLayerConfig m;
    m.hidden = mc.hidden_size;
    m.ffn = mc.ffn_hidden_size;
    m.router.num_experts = 4;
    m.router.topk = 2;
    m.router.drop_tokens = false;
    m.init_std = m.output_init_std = mc.init_method_std;
    m.layer = layer;
    m.dtype = mc.dtype;
    return std::make_unique<moe::MoeFeedForward>(params, prefix, m);
  };
}

}  // namespace

TEST_CASE("tensor-parallel GPT equals the single-process model (loss and every gradient)", "[parallel][tensor]") {
  parallel::Communicator& world = parallel::world();
  int tp = world.size(), rank = world.rank();
  nn::GptConfig whole_cfg = small_gpt(nullptr), split_cfg = small_gpt(&world);
  nn::GptModel whole(whole_cfg, moe_at_layer_1(whole_cfg), 0.01), split(split_cfg, moe_at_layer_1(split_cfg), 0.01);

  Tensor tokens = Tensor::empty({3, 8}, DType::I32), labels = Tensor::empty({3, 8}, DType::I32);
  std::vector<double> u = rand_uniform({48}, DType::F64, rng_key(11, 0, 0, 0), 0.0, 1.0).to_double_vector();
  for (int64_t i = 0; i < 24; ++i) {
    tokens.data<int32_t>()[i] = int32_t(u[size_t(i)] * 50);  // ids of the real (unpadded) vocabulary
    labels.data<int32_t>()[i] = int32_t(u[size_t(24 + i)] * 50);
  }
  Tensor mask = Tensor::full({3, 8}, 1.0, DType::F64);
  mask.data<double>()[5] = 0.0;
  nn::ForwardMode mode{true, 6};
  nn::LossParts a = whole.loss_parts(tokens, labels, mask, mode);
  current_tape().backward(a.total);
  nn::LossParts b = split.loss_parts(tokens, labels, mask, mode);
  current_tape().backward(b.total);

  INFO("rank " << rank << " of " << tp);
  REQUIRE(b.lm_loss == Approx(a.lm_loss).epsilon(1e-12));
  REQUIRE(b.aux_loss == Approx(a.aux_loss).epsilon(1e-12));
  REQUIRE(split.parameters().all().size() == whole.parameters().all().size());
  for (const Parameter& p : split.parameters().all()) {
    const Parameter& full = whole.parameters().get(p.name);
    Tensor want = p.tags.tp_split_dim >= 0 && !p.tags.expert
                      ? parallel::shard_of(full.var.grad(), {p.tags.tp_split_dim, p.tags.tp_blocks}, rank, tp)
                      : full.var.grad();
    INFO(p.name);
    REQUIRE(p.var.shape() == want.shape());
    REQUIRE(testutil::max_abs_diff(p.var.grad().to_double_vector(), want.to_double_vector()) < 1e-11);
  }
}
