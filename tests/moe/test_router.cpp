// Routing decisions against hand-computed cases (docs/moe.md): capacity, min capacity, dropping by
// position, RTS reproducibility, top-2 slot order and renormalisation, l_aux, eval vs train
// capacity factor, dropless mode.
#include <catch2/catch.hpp>
#include <cmath>
#include <set>

#include "moe/moe_ops.h"
#include "moe/router.h"

using namespace mt;
using namespace mt::moe;

namespace {
// probs rows -> (probs, logits = log probs) tensors
std::pair<Tensor, Tensor> pz(const std::vector<std::vector<double>>& rows) {
  std::vector<double> p, z;
  for (auto& r : rows)
    for (double v : r) p.push_back(v), z.push_back(std::log(v));
  int64_t s = int64_t(rows.size()), e = int64_t(rows[0].size());
  return {Tensor::from_vector(p, {s, e}), Tensor::from_vector(z, {s, e})};
}
}  // namespace

TEST_CASE("capacity formula with min capacity", "[moe][router]") {
  REQUIRE(expert_capacity(8192, 128, 1, 1.0, 4) == 64);    // 350M+MoE-128, micro-batch 4 x 2048
  REQUIRE(expert_capacity(16384, 128, 1, 1.0, 4) == 128);  // 1.3B+MoE-128
  REQUIRE(expert_capacity(8192, 32, 1, 1.0, 4) == 256);    // PR-MoE 32-expert layers
  REQUIRE(expert_capacity(6, 2, 1, 1.0, 4) == 4);          // the minimum wins
  REQUIRE(expert_capacity(7, 2, 1, 1.0, 1) == 4);          // ceil(3.5)
  REQUIRE(expert_capacity(6, 3, 2, 1.0, 1) == 4);          // top-2: 2 * cf
}

TEST_CASE("top-1: the worked example of docs/math/moe.md, RTS off", "[moe][router]") {
  auto [p, z] = pz({{0.9, 0.1}, {0.8, 0.2}, {0.7, 0.3}, {0.6, 0.4}, {0.3, 0.7}, {0.2, 0.8}});
  RouterConfig cfg;
  cfg.num_experts = 2;
  cfg.min_capacity = 1;
  cfg.use_rts = false;
  Routing r = route(p, z, cfg, true, {});
  REQUIRE(r.capacity == 3);
  REQUIRE(r.expert == std::vector<int32_t>{0, 0, 0, 0, 1, 1});
  REQUIRE(r.slot == std::vector<int32_t>{0, 1, 2, -1, 0, 1});  // t3 dropped: its MoE output is 0
  REQUIRE(r.assigned == std::vector<int64_t>{4, 2});
  REQUIRE(r.kept == std::vector<int64_t>{3, 2});
  REQUIRE(r.dropped_fraction() == Approx(1.0 / 6));
  Variable probs(p);
  REQUIRE(aux_loss(probs, r).value().item() == Approx(1.05556).epsilon(1e-4));
  std::vector<double> w = gate_weights(probs, r).value().to_double_vector();
  REQUIRE(w == std::vector<double>{0.9, 0.8, 0.7, 0.0, 0.7, 0.8});  // no renormalisation in top-1
  REQUIRE(dispatch_positions(r) == std::vector<int64_t>{0, 1, 2, -1, 3, 4});
}

TEST_CASE("top-1 Random Token Selection is a seeded uniform subset", "[moe][router]") {
  std::vector<std::vector<double>> rows(40, {0.9, 0.1});  // everyone picks expert 0
  auto [p, z] = pz(rows);
  RouterConfig cfg;
  cfg.num_experts = 2;
  cfg.min_capacity = 1;
  Routing a = route(p, z, cfg, true, rng_key(1, 5, 0, 0)), b = route(p, z, cfg, true, rng_key(1, 5, 0, 0));
  Routing c = route(p, z, cfg, true, rng_key(1, 6, 0, 0));
  REQUIRE(a.capacity == 20);
  REQUIRE(a.kept[0] == 20);
  REQUIRE(a.slot == b.slot);  // reproducible under the seed
  REQUIRE(a.slot != c.slot);  // another step, another subset
  REQUIRE(a.slot != std::vector<int32_t>(a.slot.size(), 0));
  // Not simply the first 20, and slots follow token order among the kept.
  int32_t next = 0;
  bool skipped_early = false;
  for (size_t t = 0; t < 40; ++t) {
    if (a.slot[t] >= 0)
      REQUIRE(a.slot[t] == next++);
    else if (t < 20)
      skipped_early = true;
  }
  REQUIRE(skipped_early);
}

TEST_CASE("top-2: slot order, dropping by position, renormalised weights", "[moe][router]") {
  auto [p, z] = pz({{0.5, 0.3, 0.2}, {0.6, 0.1, 0.3}, {0.2, 0.7, 0.1}});
  RouterConfig cfg;
  cfg.num_experts = 3;
  cfg.topk = 2;
  cfg.min_capacity = 1;
  cfg.top2_2nd_expert_sampling = false;
  cfg.capacity_factor = 10;  // no dropping
  Routing r = route(p, z, cfg, true, {});
  REQUIRE(r.expert == std::vector<int32_t>{0, 1, 0, 2, 1, 0});
  // First choices first (e0: t0, t1; e1: t2), then second choices (e1: t0; e2: t1; e0: t2).
  REQUIRE(r.slot == std::vector<int32_t>{0, 1, 1, 0, 0, 2});
  std::vector<double> w = gate_weights(Variable(p), r).value().to_double_vector();
  REQUIRE(w[0] == Approx(0.5 / 0.8));
  REQUIRE(w[1] == Approx(0.3 / 0.8));
  // Capacity 2: t2's second choice (e0, slot 2) is dropped and its first choice gets weight 1.
  cfg.capacity_factor = 1.0;
  Routing d = route(p, z, cfg, true, {});
  REQUIRE(d.capacity == 2);
  REQUIRE(d.slot == std::vector<int32_t>{0, 1, 1, 0, 0, -1});
  std::vector<double> wd = gate_weights(Variable(p), d).value().to_double_vector();
  REQUIRE(wd[4] == Approx(1.0));
  REQUIRE(wd[5] == 0.0);
  REQUIRE(d.assigned == std::vector<int64_t>{3, 2, 1});  // counted before dropping
}

TEST_CASE("the drop cost's sample and rescue: dropped choices kept after their experts' rows", "[moe][router]") {
  auto [p, z] = pz({{0.5, 0.3, 0.2}, {0.6, 0.1, 0.3}, {0.2, 0.7, 0.1}, {0.8, 0.1, 0.1}});
  RouterConfig cfg;
  cfg.num_experts = 3;
  cfg.topk = 2;
  cfg.min_capacity = 1;
  cfg.top2_2nd_expert_sampling = false;
  // choices (e0, e1), (e0, e2), (e1, e0), (e0, e1); capacity 2: e0 keeps t0, t1's first choices,
  // e1 t2's first and t0's second; dropped: t2's second (e0), both of t3's
  cfg.capacity_factor = 0.75;
  Routing d = route(p, z, cfg, true, {});
  REQUIRE(d.capacity == 2);
  REQUIRE(d.slot == std::vector<int32_t>{0, 1, 1, 0, 0, -1, -1, -1});
  REQUIRE(sample_dropped(d, 10) == std::vector<size_t>{5, 6, 7});
  REQUIRE(sample_dropped(d, 2) == std::vector<size_t>{5, 6});
  REQUIRE(sample_dropped(d, 1) == std::vector<size_t>{5});
  REQUIRE(sample_dropped(d, 0).empty());
  Routing all = with_rescued(d, sample_dropped(d, 10));
  REQUIRE(all.slot == std::vector<int32_t>{0, 1, 1, 0, 0, 2, 3, 2});
  REQUIRE(all.kept == std::vector<int64_t>{4, 3, 1});
  REQUIRE(all.capacity == 4);
  REQUIRE(all.assigned == d.assigned);
  // every token's weights as without a capacity (t3's two choices 0.8 / 0.9 and 0.1 / 0.9 again)
  cfg.drop_tokens = false;
  Routing free = route(p, z, cfg, true, {});
  REQUIRE(gate_weights(Variable(p), all).value().to_double_vector() ==
          gate_weights(Variable(p), free).value().to_double_vector());
  REQUIRE_THROWS_WITH(with_rescued(d, {0}), Catch::Contains("not a dropped one"));
  // the evenly spaced sample: floor(i n / limit) of the n dropped ones
  Routing many;
  many.slot.assign(10, -1);
  REQUIRE(sample_dropped(many, 4) == std::vector<size_t>{0, 2, 5, 7});
}

TEST_CASE("eval capacity factor, dropless mode and top-k", "[moe][router]") {
  std::vector<std::vector<double>> rows(12, {0.7, 0.2, 0.1});
  auto [p, z] = pz(rows);
  RouterConfig cfg;
  cfg.num_experts = 3;
  cfg.min_capacity = 1;
  cfg.capacity_factor = 1.0;
  cfg.eval_capacity_factor = 2.0;
  REQUIRE(route(p, z, cfg, true, {}).capacity == 4);
  REQUIRE(route(p, z, cfg, false, {}).capacity == 8);
  cfg.drop_tokens = false;
  Routing all = route(p, z, cfg, true, {});
  REQUIRE(all.capacity == 12);
  REQUIRE(all.dropped_fraction() == 0.0);
  cfg.topk = 3;
  cfg.drop_tokens = true;
  cfg.capacity_factor = 1.0;
  Routing k3 = route(p, z, cfg, true, {});
  REQUIRE(k3.capacity == 12);
  REQUIRE(k3.aux_scale == Approx(1.0));  // E / k
  std::vector<double> w = gate_weights(Variable(p), k3).value().to_double_vector();
  REQUIRE(w[0] + w[1] + w[2] == Approx(1.0));
  REQUIRE_THROWS_WITH(route(p, z, RouterConfig{}, true, {}), Catch::Contains("[tokens, 8]"));
}

TEST_CASE("noisy gate policies: RSample samples from P in training only", "[moe][router]") {
  std::vector<std::vector<double>> rows(4000, {0.7, 0.3});
  auto [p, z] = pz(rows);
  RouterConfig cfg;
  cfg.num_experts = 2;
  cfg.drop_tokens = false;
  cfg.noisy_gate_policy = "RSample";
  Routing r = route(p, z, cfg, true, rng_key(3, 1, 0, 0));
  double share0 = double(r.assigned[0]) / 4000.0;
  REQUIRE(share0 == Approx(0.7).margin(0.03));  // Gumbel-max: a sample from softmax(logits)
  REQUIRE(route(p, z, cfg, true, rng_key(3, 1, 0, 0)).expert == r.expert);
  REQUIRE(route(p, z, cfg, false, rng_key(3, 1, 0, 0)).assigned[0] == 4000);  // eval: argmax
  cfg.topk = 2;
  REQUIRE_THROWS_WITH(route(p, z, cfg, true, {}), Catch::Contains("RSample"));
}

TEST_CASE("expert bias: the choice takes the top-k of P + b, the weights and the aux loss keep P", "[moe][router]") {
  // 4 tokens over 3 experts; expert 0 most probable everywhere
  std::vector<double> p = {0.6, 0.3, 0.1, 0.5, 0.3, 0.2, 0.7, 0.2, 0.1, 0.4, 0.35, 0.25};
  Tensor probs = Tensor::from_vector(p, {4, 3});
  Tensor logits = Tensor::from_vector(std::vector<double>(12, 0.0), {4, 3});
  RouterConfig cfg;
  cfg.num_experts = 3;
  cfg.topk = 1;
  cfg.drop_tokens = false;
  Routing plain = route(probs, logits, cfg, true, {});
  CHECK(plain.expert == std::vector<int32_t>{0, 0, 0, 0});
  cfg.expert_bias = {0.0, 0.25, 0.0};  // lifts expert 1 past 0 where P0 - P1 < 0.25
  Routing biased = route(probs, logits, cfg, true, {});
  CHECK(biased.expert == std::vector<int32_t>{0, 1, 0, 1});
  CHECK(biased.aux_fraction == std::vector<double>{0.5, 0.5, 0.0});  // the counts follow the choices
  Variable w = gate_weights(Variable(probs), biased);                // the unbiased probabilities
  CHECK(w.value().to_double_vector() == std::vector<double>{0.6, 0.3, 0.7, 0.35});
  cfg.topk = 2;  // top-2 of P + b, no second-expert noise
  Routing two = route(probs, logits, cfg, true, {});
  CHECK(two.expert == std::vector<int32_t>{0, 1, 1, 0, 0, 1, 1, 0});
  cfg.noisy_gate_policy = "RSample";
  cfg.topk = 1;
  REQUIRE_THROWS_WITH(route(probs, logits, cfg, true, {}), Catch::Contains("RSample"));
}

TEST_CASE("group-limited routing: the top-k inside each token's best groups", "[moe][router]") {
  // 6 experts in 3 groups {0,1} {2,3} {4,5}; top-2 within the best group (group_topk 1): a group's
  // score is the sum of its 2 best probabilities
  std::vector<double> p = {0.30, 0.001, 0.20, 0.20, 0.15, 0.15,   // groups .301 .40 .30: {2,3}
                           0.05, 0.05,  0.10, 0.10, 0.35, 0.35};  // {4,5}
  std::vector<double> z(p.size());
  for (size_t i = 0; i < p.size(); ++i) z[i] = std::log(p[i]);  // (DeepSpeed's top-2 takes e2 by logit)
  Tensor probs = Tensor::from_vector(p, {2, 6});
  Tensor logits = Tensor::from_vector(z, {2, 6});
  RouterConfig cfg;
  cfg.num_experts = 6;
  cfg.topk = 2;
  cfg.drop_tokens = false;
  cfg.top2_2nd_expert_sampling = false;
  CHECK(route(probs, logits, cfg, true, {}).expert == std::vector<int32_t>{0, 2, 4, 5});  // plain top-2
  cfg.num_groups = 3;
  cfg.group_topk = 1;
  Routing r = route(probs, logits, cfg, true, {});
  CHECK(r.expert == std::vector<int32_t>{2, 3, 4, 5});  // expert 0 (0.30) is outside token 0's group
  cfg.group_topk = 2;  // two groups, each scored by its best: token 0 keeps {0,1} and {2,3}
  CHECK(route(probs, logits, cfg, true, {}).expert == std::vector<int32_t>{0, 2, 4, 5});
  cfg.expert_bias = {0, 0, 0, 0, 0.2, 0.2};  // the bias counts in the groups' scores too
  cfg.group_topk = 1;
  CHECK(route(probs, logits, cfg, true, {}).expert == std::vector<int32_t>{4, 5, 4, 5});
  cfg.expert_bias.clear();
  cfg.num_groups = 4;  // does not divide 6
  REQUIRE_THROWS_WITH(route(probs, logits, cfg, true, {}), Catch::Contains("num_groups dividing the 6 experts"));
}
