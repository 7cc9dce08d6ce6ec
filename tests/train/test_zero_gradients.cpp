// ZeRO stage 2's gradient reduction in one process (train/zero_gradients.h): how a group is cut
// into buckets, the layer marks' order (activation checkpointing too), each layer's gradients
// released once its backward ends, and the shard's gradient equal to the flat buffer's over two
// micro-batches. (The reductions over ranks run under mpirun: parallel.train_*_zero2*.)
#include <catch2/catch.hpp>

#include "autograd/layer_boundary.h"
#include "autograd/tape.h"
#include "tiny_gpt.h"
#include "train/zero_gradients.h"

using namespace mt;
using namespace mt::train;

TEST_CASE("ZeRO 2 cuts a group into buckets from its end, each within one layer", "[train][zero]") {
  // embeddings (-1), layer 0 (2 params), layer 1 (2 params), final LayerNorm (-1)
  std::vector<int64_t> sizes = {10, 4, 6, 6, 6, 6, 2}, layers = {-1, -1, 0, 0, 1, 1, -1};
  std::vector<IndexRange> b = cut_gradient_buckets(sizes, layers, 12);
  std::vector<std::pair<size_t, size_t>> got;
  for (IndexRange r : b) got.push_back({r.first, r.last});
  // the final LayerNorm (outside the layers: alone); layer 1's two (12); layer 0's two; the
  // embeddings one by one
  CHECK(got == std::vector<std::pair<size_t, size_t>>{{6, 7}, {4, 6}, {2, 4}, {1, 2}, {0, 1}});
  b = cut_gradient_buckets({10, 4, 6, 2, 2}, {-1, -1, 0, -1, -1}, 100);
  got.clear();
  for (IndexRange r : b) got.push_back({r.first, r.last});
  CHECK(got == std::vector<std::pair<size_t, size_t>>{{4, 5}, {3, 4}, {2, 3}, {1, 2}, {0, 1}});
  // a parameter larger than a bucket is a bucket of its own; layers never share one
  b = cut_gradient_buckets({5, 5, 5, 40, 3}, {0, 1, 1, 1, 1}, 20);
  got.clear();
  for (IndexRange r : b) got.push_back({r.first, r.last});
  CHECK(got == std::vector<std::pair<size_t, size_t>>{{4, 5}, {3, 4}, {1, 3}, {0, 1}});
}

namespace {
// Passes the marks on to the reducer and checks, at each, that the layers done hold no gradient.
struct Watch final : LayerBackwardListener {
  ZeroGradientReducer* reducer;
  const ParameterRegistry* params;
  std::vector<int64_t> layers, order;
  bool released = true;
  void layer_backward_done(int64_t layer) override {
    reducer->layer_backward_done(layer);
    order.push_back(layer);
    for (size_t i = 0; i < layers.size(); ++i)
      if (layers[i] >= layer && params->all()[i].var.grad().defined()) released = false;
  }
};
}  // namespace

TEST_CASE("ZeRO 2 in one process: the shard's gradient is the flat buffer's, layer by layer", "[train][zero]") {
  for (bool checkpointing : {false, true}) {
    INFO("activation checkpointing " << checkpointing);
    nn::GptConfig mc = testutil::tiny_gpt();
    mc.num_layers = 3;
    mc.checkpoint_activations = checkpointing;
    nn::GptModel flat(mc);
    mc.grad_storage = GradStorage::PerParameter;
    nn::GptModel per_parameter(mc);
    ParameterRegistry& params = per_parameter.parameters();
    REQUIRE_FALSE(params.flat_grads(ParamGroup::Dense).defined());
    FlatShard shards[kNumParamGroups] = {FlatShard::of(params.flat_values(ParamGroup::Dense).numel(), nullptr),
                                         FlatShard{}};
    // a layer holds 2,224 elements here: 2 buckets each; the embeddings and the final LayerNorm
    // (2 each) one by one
    ZeroGradientReducer reducer(params, shards, per_parameter.parameter_layers(), 1500, 1);
    CHECK(reducer.buckets() == 10);
    Watch watch;
    watch.reducer = &reducer;
    watch.params = &params;
    watch.layers = per_parameter.parameter_layers();
    CHECK(watch.layers.front() == -1);  // the word embeddings
    CHECK(watch.layers.back() == -1);   // the final LayerNorm
    reducer.zero();
    flat.parameters().zero_grads();
    for (int micro = 0; micro < 2; ++micro) {
      Tensor tokens = Tensor::from_vector(std::vector<int32_t>{1, 5, 7, 2, 10, 0, 3, 3, 9, 4}, {2, 5});
      Tensor labels = Tensor::from_vector(std::vector<int32_t>{5, 7, 2, 10, 0, 3, 9, 4, 6, micro}, {2, 5});
      Variable want = flat.loss(tokens, labels, Tensor(), {true, 0});
      current_tape().backward(want);
      Variable got = per_parameter.loss(tokens, labels, Tensor(), {true, 0});
      {
        ListenToLayerBackward listen(&watch);
        current_tape().backward(got);
      }
      reducer.finish_backward();
      for (const Parameter& p : params.all()) CHECK_FALSE(p.var.grad().defined());  // all released
    }
    CHECK(watch.order == std::vector<int64_t>{2, 1, 0, 2, 1, 0});  // the last layer first
    CHECK(watch.released);
    std::vector<double> want = flat.parameters().flat_grads(ParamGroup::Dense).to_double_vector();
    std::vector<double> got = reducer.held().grads[int(ParamGroup::Dense)].to_double_vector();
    REQUIRE(got.size() == want.size());
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]));
    CHECK(worst < 1e-12);
  }
}
