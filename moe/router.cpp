#include "moe/router.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include "runtime/error.h"

namespace mt::moe {

int64_t Routing::num_kept() const {
  return std::accumulate(kept.begin(), kept.end(), int64_t(0));
}

double Routing::dropped_fraction() const {
  int64_t total = tokens * k;
  return total ? 1.0 - double(num_kept()) / double(total) : 0.0;
}

std::vector<size_t> sample_dropped(const Routing& r, int64_t limit) {
  std::vector<size_t> dropped;
  for (size_t a = 0; a < r.slot.size(); ++a)
    if (r.slot[a] < 0) dropped.push_back(a);
  if (limit < 0 || int64_t(dropped.size()) <= limit) return dropped;
  std::vector<size_t> sample;  // the i-th of `limit` evenly spaced picks: floor(i * n / limit)
  for (int64_t i = 0; i < limit; ++i) sample.push_back(dropped[size_t(i * int64_t(dropped.size()) / limit)]);
  return sample;
}

Routing with_rescued(const Routing& r, const std::vector<size_t>& assignments) {
  Routing out = r;
  for (size_t a : assignments) {
    MT_CHECK(a < out.slot.size() && out.slot[a] < 0, "with_rescued: assignment ", a, " is not a dropped one");
    int32_t e = out.expert[a];
    out.slot[a] = int32_t(out.kept[size_t(e)]++);
    out.capacity = std::max(out.capacity, out.kept[size_t(e)]);
  }
  return out;
}

int64_t expert_capacity(int64_t tokens, int64_t experts, int64_t k, double capacity_factor, int64_t min_capacity) {
  int64_t c = int64_t(std::ceil(double(tokens) / double(experts) * capacity_factor * double(k)));
  return std::max(c, min_capacity);
}

namespace {

// Slots in token order among the kept assignments of each expert, for assignments already
// marked kept (slot >= 0 means kept before numbering).
void number_slots_in_token_order(Routing& r, const std::vector<char>& keep) {
  std::vector<int64_t> next(size_t(r.experts), 0);
  for (size_t a = 0; a < r.expert.size(); ++a) {
    if (!keep[a]) {
      r.slot[a] = -1;
      continue;
    }
    r.slot[a] = int32_t(next[size_t(r.expert[a])]++);
  }
  r.kept = next;
}

// The top-k of score = P[t] + b over the allowed experts (group-limited routing keeps group_topk
// groups, each scored by the sum of its k / group_topk largest scores); ties to the lower index.
void choose_top_k(const double* pt, const RouterConfig& cfg, int64_t k, int32_t* out) {
  int64_t e_count = cfg.num_experts;
  std::vector<double> score(pt, pt + e_count);
  if (!cfg.expert_bias.empty())
    for (int64_t e = 0; e < e_count; ++e) score[size_t(e)] += cfg.expert_bias[size_t(e)];
  auto by_score = [&](int32_t a, int32_t b) { return score[a] > score[b] || (score[a] == score[b] && a < b); };
  std::vector<int32_t> order(static_cast<size_t>(e_count));
  std::iota(order.begin(), order.end(), 0);
  if (cfg.num_groups > 0) {
    int64_t per_group = e_count / cfg.num_groups, best_of = k / cfg.group_topk;
    std::vector<double> group_score(size_t(cfg.num_groups), 0.0);
    for (int64_t g = 0; g < cfg.num_groups; ++g) {
      std::vector<double> in(score.begin() + g * per_group, score.begin() + (g + 1) * per_group);
      std::partial_sort(in.begin(), in.begin() + best_of, in.end(), std::greater<double>());
      for (int64_t i = 0; i < best_of; ++i) group_score[size_t(g)] += in[size_t(i)];
    }
    std::vector<int32_t> groups(size_t(cfg.num_groups));
    std::iota(groups.begin(), groups.end(), 0);
    std::partial_sort(groups.begin(), groups.begin() + cfg.group_topk, groups.end(), [&](int32_t a, int32_t b) {
      return group_score[size_t(a)] > group_score[size_t(b)] ||
             (group_score[size_t(a)] == group_score[size_t(b)] && a < b);
    });
    std::vector<char> allowed(size_t(cfg.num_groups), 0);
    for (int64_t i = 0; i < cfg.group_topk; ++i) allowed[size_t(groups[size_t(i)])] = 1;
    order.erase(std::remove_if(order.begin(), order.end(), [&](int32_t e) { return !allowed[size_t(e / per_group)]; }),
                order.end());
  }
  std::partial_sort(order.begin(), order.begin() + k, order.end(), by_score);
  for (int64_t j = 0; j < k; ++j) out[j] = order[size_t(j)];
}

}  // namespace

Routing route(const Tensor& probs_t, const Tensor& logits_t, const RouterConfig& cfg, bool training, RngKey key) {
  MT_CHECK(probs_t.dim() == 2 && probs_t.shape() == logits_t.shape() && probs_t.size(1) == cfg.num_experts,
           "router: probabilities and logits must be [tokens, ", cfg.num_experts, "]; got ", probs_t.str(), " and ",
           logits_t.str());
  MT_CHECK(cfg.noisy_gate_policy == "None" || cfg.noisy_gate_policy == "Jitter" ||
               (cfg.noisy_gate_policy == "RSample" && cfg.topk == 1),
           "router: noisy_gate_policy must be None, Jitter or RSample (RSample with topk 1 only), got '",
           cfg.noisy_gate_policy, "' with topk ", cfg.topk);
  MT_CHECK(cfg.topk >= 1 && cfg.topk <= cfg.num_experts, "router: topk (", cfg.topk, ") must be in [1, num_experts (",
           cfg.num_experts, ")]");
  std::vector<double> p = probs_t.to_double_vector(), z = logits_t.to_double_vector();
  Routing r;
  r.tokens = probs_t.size(0);
  r.experts = cfg.num_experts;
  r.k = cfg.topk;
  int64_t s = r.tokens, e_count = r.experts, k = r.k;
  r.expert.assign(size_t(s * k), -1);
  r.slot.assign(size_t(s * k), -1);
  r.assigned.assign(size_t(e_count), 0);
  r.aux_fraction.assign(size_t(e_count), 0.0);

  // --- choices
  const std::vector<double>& bias = cfg.expert_bias;
  MT_CHECK(bias.empty() || int64_t(bias.size()) == e_count, "router: ", bias.size(), " expert biases for ", e_count,
           " experts");
  MT_CHECK(bias.empty() || cfg.noisy_gate_policy != "RSample", "router: expert bias and RSample do not combine");
  bool grouped = cfg.num_groups > 0, sigmoid = cfg.score_function == "sigmoid";
  MT_CHECK(sigmoid || cfg.score_function == "softmax", "router: score_function must be softmax or sigmoid, got '",
           cfg.score_function, "'");
  MT_CHECK(!sigmoid || cfg.noisy_gate_policy != "RSample", "router: sigmoid scores and RSample do not combine");
  MT_CHECK(!grouped || (e_count % cfg.num_groups == 0 && cfg.group_topk >= 1 && cfg.group_topk <= cfg.num_groups &&
                        k >= cfg.group_topk && k <= cfg.group_topk * (e_count / cfg.num_groups)),
           "router: group-limited routing needs num_groups dividing the ", e_count, " experts and group_topk in [1, ",
           "num_groups] with group_topk <= topk <= group_topk x experts per group; got num_groups ", cfg.num_groups,
           ", group_topk ", cfg.group_topk, ", topk ", k);
  MT_CHECK(!grouped || cfg.noisy_gate_policy != "RSample", "router: group-limited routing and RSample do not combine");
  for (int64_t t = 0; t < s; ++t) {
    const double* pt = p.data() + t * e_count;
    const double* zt = z.data() + t * e_count;
    if (!bias.empty() || grouped || sigmoid) {  // top-k of P + b (within the token's best groups)
      choose_top_k(pt, cfg, k, r.expert.data() + t * k);
    } else if (k == 1 && cfg.noisy_gate_policy == "RSample" && training) {
      int32_t best_e = 0;
      double best = -INFINITY;
      for (int64_t e = 0; e < e_count; ++e) {
        double u = std::max(double(uniform_at(key, uint64_t(t * e_count + e))), 1e-12);
        double score = zt[e] - std::log(-std::log(u));
        if (score > best) best = score, best_e = int32_t(e);
      }
      r.expert[size_t(t)] = best_e;
    } else if (k == 1) {
      r.expert[size_t(t)] = int32_t(std::max_element(pt, pt + e_count) - pt);
    } else if (k == 2) {
      int32_t e1 = int32_t(std::max_element(pt, pt + e_count) - pt);
      int32_t e2 = -1;
      double best = -INFINITY;
      for (int64_t e = 0; e < e_count; ++e) {
        if (e == e1) continue;
        double score = zt[e];
        if (cfg.top2_2nd_expert_sampling && training) {  // Gumbel-max: a sample from softmax(z) over the others
          double u = std::max(double(uniform_at(key, uint64_t(t * e_count + e))), 1e-12);
          score += -std::log(-std::log(u));
        }
        if (score > best) best = score, e2 = int32_t(e);
      }
      r.expert[size_t(2 * t)] = e1;
      r.expert[size_t(2 * t + 1)] = e2;
    } else {
      std::vector<int32_t> order(static_cast<size_t>(e_count));
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + k, order.end(),
                        [&](int32_t a, int32_t b) { return zt[a] > zt[b] || (zt[a] == zt[b] && a < b); });
      for (int64_t j = 0; j < k; ++j) r.expert[size_t(t * k + j)] = order[size_t(j)];
    }
  }
  for (int32_t e : r.expert) r.assigned[size_t(e)] += 1;

  // --- load-balancing fractions: first choices for k <= 2 (l_aux = E sum me ce), k-hot for k >= 3
  // (l_aux = E/k sum me ce, ~1 at balance either way)
  for (int64_t t = 0; t < s; ++t)
    for (int64_t j = 0; j < (k <= 2 ? 1 : k); ++j)
      r.aux_fraction[size_t(r.expert[size_t(t * k + j)])] += 1.0 / double(s);
  r.aux_scale = k <= 2 ? double(e_count) : double(e_count) / double(k);

  // --- capacity
  double cf = training ? cfg.capacity_factor : cfg.eval_capacity_factor;
  if (cfg.drop_tokens) {
    r.capacity = expert_capacity(s, e_count, k, cf, cfg.min_capacity);
  } else {
    r.capacity = *std::max_element(r.assigned.begin(), r.assigned.end());
    if (k == 1) r.capacity = std::min(r.capacity, s);
  }
  int64_t c = r.capacity;

  // --- which assignments keep a slot
  std::vector<char> keep(r.expert.size(), 1);
  if (cfg.drop_tokens) {
    if (k == 1) {
      // Per expert: keep C of the tokens that chose it - a uniformly random subset with RTS (the C
      // largest uniform priorities), else the first C in token order.
      std::vector<std::vector<int64_t>> chosen(static_cast<size_t>(e_count));
      for (int64_t t = 0; t < s; ++t) chosen[size_t(r.expert[size_t(t)])].push_back(t);
      std::vector<float> priority;
      if (cfg.use_rts) {  // one uniform per token, from its own stream (apart from the Gumbel noise)
        RngKey rts = key;
        rts.stream ^= 0x5275747352ull;
        priority.resize(size_t(s));
        for (int64_t t = 0; t < s; ++t) priority[size_t(t)] = uniform_at(rts, uint64_t(t));
      }
      for (int64_t e = 0; e < e_count; ++e) {
        std::vector<int64_t>& toks = chosen[size_t(e)];
        if (int64_t(toks.size()) <= c) continue;
        if (cfg.use_rts)
          std::stable_sort(toks.begin(), toks.end(),
                           [&](int64_t a, int64_t b) { return priority[size_t(a)] > priority[size_t(b)]; });
        for (size_t i = size_t(c); i < toks.size(); ++i) keep[size_t(toks[i])] = 0;
      }
    } else if (k == 2) {
      // Position: first choices take slots in token order, then second choices; beyond C dropped.
      std::vector<int64_t> used(size_t(e_count), 0);
      for (int64_t j = 0; j < 2; ++j)
        for (int64_t t = 0; t < s; ++t) {
          size_t a = size_t(2 * t + j);
          keep[a] = used[size_t(r.expert[a])]++ < c;
        }
    } else {
      // Each expert keeps its C most probable assignments.
      std::vector<std::vector<std::pair<double, size_t>>> by_expert(static_cast<size_t>(e_count));
      for (size_t a = 0; a < r.expert.size(); ++a)
        by_expert[size_t(r.expert[a])].push_back({p[(a / size_t(k)) * size_t(e_count) + size_t(r.expert[a])], a});
      for (auto& list : by_expert) {
        if (int64_t(list.size()) <= c) continue;
        std::stable_sort(list.begin(), list.end(), [](auto& x, auto& y) { return x.first > y.first; });
        for (size_t i = size_t(c); i < list.size(); ++i) keep[list[i].second] = 0;
      }
    }
  }
  if (k == 2) {
    // Slots: an expert's first choices before its second choices, each in token order.
    std::vector<int64_t> next(size_t(e_count), 0);
    for (int64_t j = 0; j < 2; ++j)
      for (int64_t t = 0; t < s; ++t) {
        size_t a = size_t(2 * t + j);
        r.slot[a] = keep[a] ? int32_t(next[size_t(r.expert[a])]++) : -1;
      }
    r.kept = next;
  } else {
    number_slots_in_token_order(r, keep);
  }
  return r;
}

}  // namespace mt::moe
