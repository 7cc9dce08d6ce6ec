// MoE layer gradients against finite differences (f64), routing held fixed: top-1, top-2, top-3,
// residual; and the pieces' forward against a naive computation.
#include <catch2/catch.hpp>

#include "autograd/gradcheck.h"
#include "autograd/tape.h"
#include "moe/expert_weights.h"
#include "moe/moe_layer.h"
#include "moe/moe_ops.h"
#include "moe/moe_probe.h"
#include "runtime/random.h"
#include "train/drop_cost.h"
#include "train/global_balance.h"
#include "train/model_config.h"
#include "train/router_diagnostics.h"

using namespace mt;
using namespace mt::moe;

namespace {
void check_layer(int64_t topk, bool residual, int64_t min_capacity, const std::string& noise = "None") {
  ParameterRegistry reg;
  MoeLayerConfig cfg;
  cfg.hidden = 6;
  cfg.ffn = 10;
  cfg.router.num_experts = 4;
  cfg.router.topk = topk;
  cfg.router.min_capacity = min_capacity;
  cfg.router.capacity_factor = 1.0;
  cfg.residual = residual;
  cfg.router.noisy_gate_policy = noise;
  cfg.init_std = 0.5;
  cfg.output_init_std = 0.5;
  cfg.dtype = DType::F64;
  MoeLayer layer(reg, "layers.1.mlp.", cfg);
  testutil::break_expert_symmetry(reg);  // every expert its own gradient
  Variable x(randn({9, 6}, DType::F64, rng_key(3, 0, 0, 0)), true, "x");
  RngKey key = rng_key(7, 1, 1, 0);
  Routing fixed = layer.forward(x, true, key).routing;
  current_tape().clear();
  std::vector<Variable> inputs{x};
  for (const Parameter& p : reg.all()) inputs.push_back(p.var);
  GradcheckOptions opt;
  opt.max_entries_per_input = 10;
  GradcheckResult y =
      gradcheck([&](const std::vector<Variable>&) { return layer.forward(x, true, key, &fixed).y; }, inputs, opt);
  INFO("output: " << y.summary());
  REQUIRE(y.ok);
  GradcheckResult aux =
      gradcheck([&](const std::vector<Variable>&) { return layer.forward(x, true, key, &fixed).aux_loss; }, {x}, opt);
  INFO("aux: " << aux.summary());
  REQUIRE(aux.ok);
}
}  // namespace

TEST_CASE("MoE layer gradients (routing held fixed)", "[moe][gradcheck]") {
  SECTION("top-1, with drops") {
    check_layer(1, false, 1);
  }
  SECTION("top-2") {
    check_layer(2, false, 1);
  }
  SECTION("top-3") {
    check_layer(3, false, 1);
  }
  SECTION("residual MoE, top-1") {
    check_layer(1, true, 4);
  }
  SECTION("top-1 with Jitter gate noise") {
    check_layer(1, false, 1, "Jitter");
  }
}

TEST_CASE("MoE layer output equals a naive per-token computation", "[moe][forward]") {
  ParameterRegistry reg;
  MoeLayerConfig cfg;
  cfg.hidden = 5;
  cfg.ffn = 7;
  cfg.router.num_experts = 3;
  cfg.router.min_capacity = 1;
  cfg.router.use_rts = false;
  cfg.dtype = DType::F64;
  MoeLayer layer(reg, "m.", cfg);
  Variable x(randn({8, 5}, DType::F64, rng_key(4, 0, 0, 0)), false);
  MoeOutput out = layer.forward(x, true, {});
  const Routing& r = out.routing;
  std::vector<double> y = out.y.value().to_double_vector(), xv = x.value().to_double_vector();
  auto param = [&](const std::string& n) { return reg.get(n).var.value().to_double_vector(); };
  std::vector<double> wg = param("m.gate.weight");
  for (int64_t t = 0; t < 8; ++t) {
    std::vector<double> ref(5, 0.0);
    if (r.slot[size_t(t)] >= 0) {
      int e = r.expert[size_t(t)];
      std::string pre = "m.experts." + std::to_string(e) + ".";
      auto w1 = param(pre + "dense_h_to_4h.weight"), b1 = param(pre + "dense_h_to_4h.bias");
      auto w2 = param(pre + "dense_4h_to_h.weight"), b2 = param(pre + "dense_4h_to_h.bias");
      // gate probability of the chosen expert
      std::vector<double> z(3, 0.0);
      double zs = 0;
      for (int q = 0; q < 3; ++q) {
        for (int c = 0; c < 5; ++c) z[size_t(q)] += wg[size_t(q * 5 + c)] * xv[size_t(t * 5 + c)];
        zs += std::exp(z[size_t(q)]);
      }
      double gate = std::exp(z[size_t(e)]) / zs;
      std::vector<double> hdn(7);
      for (int i = 0; i < 7; ++i) {
        double a = b1[size_t(i)];
        for (int c = 0; c < 5; ++c) a += w1[size_t(i * 5 + c)] * xv[size_t(t * 5 + c)];
        hdn[size_t(i)] = 0.5 * a * (1 + std::tanh(0.7978845608028654 * (a + 0.044715 * a * a * a)));
      }
      for (int c = 0; c < 5; ++c) {
        double o = b2[size_t(c)];
        for (int i = 0; i < 7; ++i) o += w2[size_t(c * 7 + i)] * hdn[size_t(i)];
        ref[size_t(c)] = gate * o;
      }
    }
    for (int c = 0; c < 5; ++c) REQUIRE(y[size_t(t * 5 + c)] == Approx(ref[size_t(c)]).margin(1e-12));
  }
}

namespace {
// A 2-layer GPT of width 8 whose second layer is MoE-4, on a vocabulary of 11 (f64 in the tests).
train::TrainConfig tiny_moe_config() {
  train::TrainConfig cfg;
  cfg.num_layers = 2;
  cfg.hidden_size = 8;
  cfg.num_attention_heads = 2;
  cfg.ffn_hidden_size = 12;
  cfg.seq_length = 5;
  cfg.num_experts = {"4"};
  cfg.init_method_std = 0.3;
  return cfg;
}

// That configuration's model in f64 (a vocabulary of 11).
std::unique_ptr<nn::GptModel> tiny_moe_model(const train::TrainConfig& cfg) {
  nn::GptConfig mc = train::model_config(cfg, 11);
  mc.padded_vocab_size = 11;
  mc.dtype = DType::F64;
  return std::make_unique<nn::GptModel>(mc, train::feed_forward_factory(cfg, mc), cfg.moe_loss_coeff);
}

// A batch of 2 sequences of 5 tokens for it, and their next tokens.
Tensor tiny_tokens() {
  return Tensor::from_vector(std::vector<int32_t>{1, 5, 7, 2, 10, 0, 3, 3, 9, 4}, {2, 5});
}
Tensor tiny_labels() {
  return Tensor::from_vector(std::vector<int32_t>{5, 7, 2, 10, 0, 3, 9, 4, 6, 1}, {2, 5});
}
}  // namespace

TEST_CASE("a whole 2-layer MoE GPT: gradients of every parameter (f64)", "[moe][gradcheck][model]") {
  for (std::string mlp_type :
       {"standard", "residual", "standard + z-loss", "standard + sigmoid", "residual + fine-grained + shared"}) {
    DYNAMIC_SECTION("mlp_type " << mlp_type) {
      train::TrainConfig cfg = tiny_moe_config();
      cfg.topk = 2;
      cfg.mlp_type = mlp_type.substr(0, mlp_type.find(' '));
      cfg.moe_loss_coeff = 0.1;
      if (mlp_type.find("z-loss") != std::string::npos) cfg.moe_z_loss_coeff = 0.05;
      if (mlp_type.find("shared") != std::string::npos) {  // narrower experts and a shared expert
        cfg.moe_ffn_hidden_size = 5;
        cfg.moe_shared_expert_intermediate_size = 7;
      }
      if (mlp_type.find("sigmoid") != std::string::npos) {  // sigmoid scores, seq loss, scaled weights
        cfg.moe_router_score_function = "sigmoid";
        cfg.moe_router_load_balancing_type = "seq_aux_loss";
        cfg.moe_router_topk_scaling_factor = 2.5;
      }
      cfg.disable_moe_token_dropping = true;  // the only discrete decision left is the argmax
      cfg.disable_moe_top2_2nd_expert_sampling = true;
      std::unique_ptr<nn::GptModel> built = tiny_moe_model(cfg);
      nn::GptModel& model = *built;
      Tensor tokens = tiny_tokens(), labels = tiny_labels();
      std::vector<Variable> params;
      for (const Parameter& p : model.parameters().all()) params.push_back(p.var);
      auto loss = [&](const std::vector<Variable>&) { return model.loss(tokens, labels, Tensor(), {true, 0}); };
      REQUIRE(model.loss_parts(tokens, labels, Tensor(), {true, 0}).layers.size() == 1);  // layer 2 only
      current_tape().clear();
      GradcheckOptions opt;
      opt.max_entries_per_input = 6;
      GradcheckResult r = gradcheck(loss, params, opt);
      INFO(r.summary());
      REQUIRE(r.ok);
    }
  }
}

TEST_CASE("the router z-loss: added to the loss times moe_z_loss_coeff, logged apart, finite for large logits",
          "[moe][zloss]") {
  train::TrainConfig cfg = tiny_moe_config();
  auto parts = [&](double z_coeff) {
    cfg.moe_z_loss_coeff = z_coeff;
    NoGradGuard no_grad;
    return tiny_moe_model(cfg)->loss_parts(tiny_tokens(), tiny_labels(), Tensor(), {true, 0});
  };
  nn::LossParts off = parts(0), on = parts(0.05);
  CHECK(off.z_loss == 0);
  CHECK(on.z_loss > 0);
  CHECK(on.layers.at(0).z_loss == on.z_loss);  // one MoE layer
  CHECK(on.lm_loss == off.lm_loss);
  CHECK(on.aux_loss == off.aux_loss);
  CHECK(on.total.value().item() == Approx(off.total.value().item() + 0.05 * on.z_loss).epsilon(1e-12));
  // logsumexp is shifted by the row's largest logit: 200 (exp overflows f32 at 89) gives 200^2
  Variable big(Tensor::from_vector(std::vector<double>{200, 0, 0, 0, 0, 200, 0, 0}, {2, 4}).to(DType::F32));
  CHECK(moe::router_z_loss(big).value().item() == Approx(40000.0).epsilon(1e-6));
}

TEST_CASE(
    "balancing losses: seq_aux_loss over one sequence is DeepSpeed's top-k loss, averaged over sequences, none is 0",
    "[moe][balancing]") {
  Tensor logits = randn({12, 4}, DType::F64, rng_key(5, 0, 0, 0));
  std::vector<double> z = logits.to_double_vector(), p(z.size());
  for (int64_t t = 0; t < 12; ++t) {
    double sum = 0;
    for (int64_t e = 0; e < 4; ++e) sum += std::exp(z[size_t(t * 4 + e)]);
    for (int64_t e = 0; e < 4; ++e) p[size_t(t * 4 + e)] = std::exp(z[size_t(t * 4 + e)]) / sum;
  }
  Tensor probs = Tensor::from_vector(p, {12, 4});
  RouterConfig rc;
  rc.num_experts = 4;
  rc.topk = 3;  // k >= 3: DeepSpeed's loss counts every choice, as the sequence loss does
  rc.drop_tokens = false;
  Routing r = route(probs, logits, rc, true, {});
  Variable pv(probs);
  CHECK(seq_aux_loss(pv, r, 12).value().item() == Approx(aux_loss(pv, r).value().item()).epsilon(1e-12));
  // three sequences of 4: the mean of each sequence's own loss
  double mean = 0;
  for (int64_t b = 0; b < 3; ++b) {
    Routing rb;
    rb.tokens = 4, rb.experts = 4, rb.k = 3;
    rb.expert.assign(r.expert.begin() + b * 12, r.expert.begin() + (b + 1) * 12);
    mean += seq_aux_loss(Variable(probs.narrow(b * 4, 4)), rb, 4).value().item() / 3.0;
  }
  CHECK(seq_aux_loss(pv, r, 4).value().item() == Approx(mean).epsilon(1e-12));
  REQUIRE_THROWS_WITH(seq_aux_loss(pv, r, 5), Catch::Contains("not whole sequences of 5"));
  // through the layer: "none" adds nothing, seq_aux_loss sees the model's sequences
  train::TrainConfig cfg = tiny_moe_config();
  auto parts = [&](const std::string& type) {
    cfg.moe_router_load_balancing_type = type;
    NoGradGuard no_grad;
    return tiny_moe_model(cfg)->loss_parts(tiny_tokens(), tiny_labels(), Tensor(), {true, 0});
  };
  nn::LossParts aux = parts("aux_loss"), seq = parts("seq_aux_loss"), none = parts("none");
  CHECK(none.aux_loss == 0);
  CHECK(none.total.value().item() == none.lm_loss);
  CHECK(seq.lm_loss == aux.lm_loss);
  CHECK(seq.aux_loss > 0);
  CHECK(seq.aux_loss != aux.aux_loss);
  CHECK(seq.total.value().item() == Approx(seq.lm_loss + cfg.moe_loss_coeff * seq.aux_loss).epsilon(1e-12));
}

TEST_CASE("parameter counts: built models and the DeepSpeed-MoE recipes", "[moe][params]") {
  for (const char* name : {"tiny-dense", "tiny-moe", "tiny-pr-moe", "tiny-mos"}) {
    train::TrainConfig cfg = train::load_config_file(std::string(MOETRAIN_SOURCE_DIR "/configs/") + name + ".yaml");
    REQUIRE(train::count_parameters(cfg, 50257) == train::make_model(cfg, 50257)->parameters().numel());
  }
  auto billions = [](const char* name) {
    train::TrainConfig cfg = train::load_config_file(std::string(MOETRAIN_SOURCE_DIR "/configs/") + name + ".yaml");
    return double(train::count_parameters(cfg, 50257)) / 1e9;
  };
  REQUIRE(billions("gpt-350M") == Approx(0.35).margin(0.03));
  REQUIRE(billions("gpt-350M-moe128") == Approx(13.1).margin(0.2));     // the paper: 13B
  REQUIRE(billions("gpt-350M-pr-moe") == Approx(4.1).margin(0.2));      // the paper: 4B
  REQUIRE(billions("gpt-1.3B-pr-moe") == Approx(31.4).margin(0.5));     // the paper: 31B
  REQUIRE(billions("gpt-350M-pr-moe-mos") == Approx(3.5).margin(0.1));  // the paper: 3.5B (MoS student)
  // The MoS config's teacher is the PR-MoE recipe, and both configs validate.
  train::TrainConfig mos = train::load_config_file(MOETRAIN_SOURCE_DIR "/configs/gpt-350M-pr-moe-mos.yaml");
  REQUIRE(double(train::count_parameters(train::teacher_config(mos), 50257)) / 1e9 ==
          Approx(billions("gpt-350M-pr-moe")));
  REQUIRE_NOTHROW(train::validate(mos));
  REQUIRE_NOTHROW(train::validate(train::load_config_file(MOETRAIN_SOURCE_DIR "/configs/tiny-mos.yaml")));
  // fine-grained experts with a shared expert: the built model's count; active = all but the
  // E - k experts a token skips (the shared expert always runs)
  train::TrainConfig fine = train::load_config_file(MOETRAIN_SOURCE_DIR "/configs/tiny-moe.yaml");
  fine.topk = 4;
  fine.moe_ffn_hidden_size = 96;
  fine.moe_shared_expert_intermediate_size = 160;
  std::unique_ptr<nn::GptModel> built = train::make_model(fine, 50257);
  int64_t total = train::count_parameters(fine, 50257), h = fine.hidden_size, per_expert = 2 * h * 96 + 96 + h;
  REQUIRE(total == built->parameters().numel());
  int64_t moe_layers = 0;
  for (int64_t e : fine.experts_per_layer()) moe_layers += e > 1 ? 1 : 0;
  int64_t e = fine.experts_per_layer().back();
  CHECK(train::count_active_parameters(fine, 50257) == total - moe_layers * (e - 4) * per_expert);
}

TEST_CASE("router diagnostics: the gate gradient's terms sum to it, and coefficient 0 gives interference 0",
          "[moe][diagnostics]") {
  train::TrainConfig cfg = tiny_moe_config();
  cfg.topk = 1;  // (top-1's weight is P itself: the LM term reaches the gate even with identical experts)
  cfg.moe_router_diagnostics = true;
  cfg.moe_z_loss_coeff = 0.05;
  for (double coeff : {0.1, 0.0}) {
    INFO("moe_loss_coeff " << coeff);
    cfg.moe_loss_coeff = coeff;
    std::unique_ptr<nn::GptModel> built = tiny_moe_model(cfg);
    nn::GptModel& model = *built;
    model.parameters().zero_grads();
    current_tape().backward(model.loss(tiny_tokens(), tiny_labels(), Tensor(), {true, 0}));
    std::map<int64_t, nn::GateGradientTerms*> terms = model.gate_gradient_terms();
    REQUIRE(terms.size() == 1);
    const nn::GateGradientTerms& t = *terms.at(1);
    std::vector<double> gate = model.parameters().get("layers.1.mlp.gate.weight").var.grad().to_double_vector();
    REQUIRE(gate.size() == t.lm.size());
    for (size_t i = 0; i < gate.size(); ++i) CHECK(t.lm[i] + t.balance[i] + t.z[i] == Approx(gate[i]).margin(1e-12));
    train::GateGradientSummary s = train::summarize_gate_gradients(t);
    CHECK(s.lm > 0);
    CHECK(s.z > 0);
    if (coeff == 0) {
      CHECK(s.balance == 0);
      CHECK(s.interference == 0);
    } else {
      CHECK(s.balance > 0);
      CHECK(std::abs(s.interference) <= 1.0);
    }
  }
}

TEST_CASE("the drop cost: rescuing every dropped token gives the dropless loss, and dropless costs exactly 0",
          "[moe][diagnostics]") {
  train::TrainConfig cfg = tiny_moe_config();
  cfg.moe_train_capacity_factor = 0.5;  // capacity ceil(10 / 4 x 0.5 x k): drops
  cfg.moe_min_capacity = 1;
  for (int64_t k : {1, 2}) {
    INFO("topk " << k);
    cfg.topk = k;
    // top-2 with a loss mask: the cost sums the change over the masked positions (weights 7.5)
    Tensor mask = k == 1
                      ? Tensor()
                      : Tensor::from_vector(std::vector<double>{1, 1, 0, 1, 1, 1, 0.5, 1, 0, 1}, {2, 5}).to(DType::F32);
    double positions = k == 1 ? 10.0 : 7.5;
    nn::ForwardMode mode{true, 3};
    cfg.disable_moe_token_dropping = false;
    std::unique_ptr<nn::GptModel> dropping = tiny_moe_model(cfg);
    cfg.disable_moe_token_dropping = true;
    std::unique_ptr<nn::GptModel> dropless = tiny_moe_model(cfg);  // the same parameters
    double dropping_loss, dropless_loss;
    int64_t dropped;
    {
      NoGradGuard no_grad;
      nn::LossParts parts = dropping->loss_parts(tiny_tokens(), tiny_labels(), mask, mode);
      dropping_loss = parts.lm_loss;
      dropped = std::llround(parts.layers.at(0).dropped * double(10 * k));
      dropless_loss = dropless->loss_parts(tiny_tokens(), tiny_labels(), mask, mode).lm_loss;
    }
    REQUIRE(dropped > 0);
    std::vector<nn::LayerLoadStats> all =
        train::measure_drop_cost(*dropping, tiny_tokens(), tiny_labels(), mask, mode, 1000, nullptr);
    REQUIRE(all.size() == 1);
    CHECK(all[0].layer == 1);
    CHECK(all[0].has_drop_cost);
    CHECK(all[0].drop_cost_tokens == dropped);
    CHECK(all[0].drop_cost_sum == Approx((dropping_loss - dropless_loss) * positions).epsilon(1e-9));
    std::vector<nn::LayerLoadStats> one =
        train::measure_drop_cost(*dropping, tiny_tokens(), tiny_labels(), mask, mode, 1, nullptr);
    CHECK(one[0].drop_cost_tokens == 1);
    CHECK(std::isfinite(one[0].drop_cost_sum));
    std::vector<nn::LayerLoadStats> none =
        train::measure_drop_cost(*dropless, tiny_tokens(), tiny_labels(), mask, mode, 1000, nullptr);
    CHECK(none[0].drop_cost_tokens == 0);
    CHECK(none[0].drop_cost_sum == 0.0);
  }
}

namespace {
// Notes each MoE layer's balancing fractions (the routing's ce) and the distribution its
// balancing loss reads (gate_probs.to_l_aux), for the last forward.
struct BalancingProbe final : moe::MoeProbe {
  const moe::Routing* on_routing(int64_t, const moe::Routing& r) override {
    fractions = r.aux_fraction;
    return nullptr;
  }
  Variable on_value(int64_t, const char* name, const Variable& v) override {
    if (std::string(name) == "gate_probs.to_l_aux") probs = v.value().to_double_vector();
    return v;
  }
  std::vector<double> fractions, probs;
};
}  // namespace

TEST_CASE("global_aux_loss: each micro-batch's loss uses the global batch's fractions", "[moe][balancing]") {
  train::TrainConfig cfg = tiny_moe_config();
  cfg.moe_router_load_balancing_type = "global_aux_loss";
  for (int64_t k : {1, 3}) {
    INFO("topk " << k);
    cfg.topk = k;
    std::unique_ptr<nn::GptModel> model = tiny_moe_model(cfg);
    Tensor tokens = tiny_tokens(), labels = tiny_labels();
    std::vector<Tensor> batches = {tokens.narrow(0, 1), tokens.narrow(1, 1)};
    std::vector<Tensor> targets = {labels.narrow(0, 1), labels.narrow(1, 1)};
    std::vector<nn::ForwardMode> modes = {{true, 0}, {true, 1}};
    // each micro-batch's own fractions and probabilities (no global fractions set: aux_loss)
    BalancingProbe probe;
    std::vector<std::vector<double>> own, probs;
    std::vector<double> aux_loss;
    for (size_t i = 0; i < 2; ++i) {
      moe::MoeProbeScope scope(&probe);
      NoGradGuard no_grad;
      aux_loss.push_back(model->loss_parts(batches[i], targets[i], Tensor(), modes[i]).aux_loss);
      own.push_back(probe.fractions);
      probs.push_back(probe.probs);
    }
    train::set_global_aux_fractions(*model, batches, modes, nullptr);
    const std::vector<double>& global = *model->global_aux_fractions().at(1);
    double lambda = k <= 2 ? 4.0 : 4.0 / double(k);
    for (size_t i = 0; i < 2; ++i) {
      double expected = 0, own_loss = 0;
      for (size_t e = 0; e < 4; ++e) {
        CHECK(global[e] == Approx((own[0][e] + own[1][e]) / 2).margin(1e-15));  // 5 tokens each
        double mean = 0;
        for (size_t t = 0; t < 5; ++t) mean += probs[i][t * 4 + e] / 5;
        expected += lambda * mean * global[e];
        own_loss += lambda * mean * own[i][e];
      }
      CHECK(aux_loss[i] == Approx(own_loss).epsilon(1e-12));
      NoGradGuard no_grad;
      CHECK(model->loss_parts(batches[i], targets[i], Tensor(), modes[i]).aux_loss == Approx(expected).epsilon(1e-12));
    }
    CHECK(own[0] != own[1]);  // (the micro-batches route differently: the global fractions are new)
    train::clear_global_aux_fractions(*model);
    CHECK(model->global_aux_fractions().at(1)->empty());
  }
}
