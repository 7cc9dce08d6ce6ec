// The expert-parallel MoE layer equals the single-rank layer: each rank routes its own tokens,
// holds E/ep experts and exchanges rows with all_to_all_v. Checked in float64 on every rank:
// the output, the input and gate gradients (equal to the single-rank layer on the same tokens)
// and each local expert's gradient (equal to the sum over the expert group of the single-rank
// gradients, since the expert now sees the tokens of every rank). Run under mpirun -np 2 and 4.
#include <catch2/catch.hpp>
#include <cmath>
#include <map>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "moe/expert_weights.h"
#include "moe/moe_layer.h"
#include "parallel/process_groups.h"
#include "runtime/random.h"
#include "test_util.h"

using namespace mt;
using namespace mt::moe;
using namespace mt::parallel;

namespace {

MoeLayerConfig small_config(int64_t topk, bool residual, bool drop_tokens) {
  MoeLayerConfig cfg;
  cfg.hidden = 6;
  cfg.ffn = 10;
  cfg.router.num_experts = 4;
  cfg.router.topk = topk;
  cfg.router.min_capacity = 1;
  cfg.router.capacity_factor = 1.0;
  cfg.router.drop_tokens = drop_tokens;
  cfg.residual = residual;
  cfg.init_std = 0.5;
  cfg.output_init_std = 0.5;
  cfg.dtype = DType::F64;
  return cfg;
}

// Gradients and outputs compared element by element.
double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.numel() == b.numel());
  return testutil::max_abs_diff(a.to_double_vector(), b.to_double_vector());
}

// A parameter's gradient; zeros where nothing reached it (an expert without tokens).
Tensor grad_or_zeros(const Parameter& p) {
  return p.var.grad().defined() ? p.var.grad().clone() : Tensor::zeros(p.var.shape(), p.var.dtype());
}

struct Run {
  Variable x, y;
};

// Forward + backward of sum(seed * y) on this rank's tokens. `starve`: feature 0 is large and
// positive on every token (with the gate set by starve_upper_experts, no token picks experts E/2..).
Run run(const MoeLayer& layer, int rank, bool starve) {
  Run r;
  Tensor x = randn({9, 6}, DType::F64, rng_key(3, 0, uint64_t(rank), 0));
  if (starve)
    for (int64_t t = 0; t < 9; ++t) x.data<double>()[t * 6] = 10.0;
  r.x = Variable(x, true, "x");
  r.y = layer.forward(r.x, true, rng_key(7, 1, uint64_t(rank), 0)).y;
  Tensor seed = randn(r.y.shape(), DType::F64, rng_key(5, 2, uint64_t(rank), 0));
  current_tape().backward(ag::multiply(r.y, seed), nullptr);
  return r;
}

// Gate logits +50 for the lower half of the experts and -50 for the upper half on starved tokens:
// the ranks holding the upper experts receive no rows at all, yet must join every collective of
// the backward.
void starve_upper_experts(const ParameterRegistry& reg) {
  for (const Parameter& p : reg.all())
    if (p.name.find("gate.weight") != std::string::npos) {
      Tensor w = p.var.value();  // shares the parameter's storage
      int64_t experts = w.size(0), hidden = w.size(1);
      for (int64_t e = 0; e < experts; ++e)
        for (int64_t i = 0; i < hidden; ++i)
          w.data<double>()[e * hidden + i] = i == 0 ? (e < experts / 2 ? 5.0 : -5.0) : 0.0;
    }
}

void check_expert_parallel(int ep, int64_t topk, bool residual, bool drop_tokens, bool starve = false) {
  ParallelLayout layout;
  layout.expert_parallel = ep;
  ProcessGroups groups = make_process_groups(world(), layout);
  int rank = world().rank();

  ParameterRegistry single_reg, ep_reg;
  MoeLayerConfig cfg = small_config(topk, residual, drop_tokens);
  MoeLayer single(single_reg, "layers.1.mlp.", cfg);
  cfg.expert_group = groups.expert_parallel.get();
  MoeLayer parallel(ep_reg, "layers.1.mlp.", cfg);
  testutil::break_expert_symmetry(single_reg);  // the same weights per global id on both layouts
  testutil::break_expert_symmetry(ep_reg);
  if (starve) {
    starve_upper_experts(single_reg);
    starve_upper_experts(ep_reg);
  }
  REQUIRE(ep_reg.all().size() < single_reg.all().size());

  Run a = run(single, rank, starve), b = run(parallel, rank, starve);
  INFO("ep " << ep << " top-" << topk << (residual ? " residual" : "") << (drop_tokens ? "" : " dropless") << ", rank "
             << rank);
  REQUIRE(max_abs_diff(a.y.value(), b.y.value()) < 1e-12);
  REQUIRE(max_abs_diff(a.x.grad(), b.x.grad()) < 1e-12);
  // Expected gradients: an expert's tokens come from the whole expert group. Summed for every
  // expert in the same order on every rank (collectives must pair up), then compared locally.
  std::map<std::string, Tensor> want;
  for (const Parameter& p : single_reg.all()) {
    want[p.name] = grad_or_zeros(p);
    if (p.tags.expert) groups.expert_parallel->all_reduce(want[p.name], ReduceKind::Sum);
  }
  int experts_checked = 0;
  for (const Parameter& p : ep_reg.all()) {
    INFO(p.name);
    REQUIRE(max_abs_diff(want.at(p.name), grad_or_zeros(p)) < 1e-11);
    experts_checked += p.tags.expert ? 1 : 0;
  }
  REQUIRE(experts_checked == 4 * 4 / ep);  // 4 tensors per local expert
}

}  // namespace

TEST_CASE("expert-parallel MoE layer equals the single-rank layer", "[parallel][mpi][moe]") {
  for (int ep : {2, 4}) {
    if (world().size() % ep != 0) continue;
    check_expert_parallel(ep, 1, false, true);
    check_expert_parallel(ep, 2, false, true);
    check_expert_parallel(ep, 1, true, true);
    check_expert_parallel(ep, 2, false, false);
    check_expert_parallel(ep, 1, false, true, true);  // ranks with no rows at all
    check_expert_parallel(ep, 2, true, false, true);
  }
}

TEST_CASE("experts that do not divide over the expert group are refused", "[parallel][mpi][moe]") {
  ParallelLayout layout;
  layout.expert_parallel = world().size();
  ProcessGroups groups = make_process_groups(world(), layout);
  ParameterRegistry reg;
  MoeLayerConfig cfg = small_config(1, false, true);
  cfg.router.num_experts = 3;
  cfg.expert_group = groups.expert_parallel.get();
  REQUIRE_THROWS_WITH(MoeLayer(reg, "m.", cfg), Catch::Contains("cannot be spread evenly"));
}
