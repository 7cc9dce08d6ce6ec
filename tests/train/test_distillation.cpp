// Mixture-of-Students: the teacher stays frozen, the KD term is on exactly before kd_stop_step,
// a resumed run crosses the stop step as an uninterrupted one, student initialisation from
// teacher layers, and the errors for a missing or mismatched teacher. (The KD loss itself is in
// the op table: forward vs a naive loop, f64 gradcheck; under tensor parallelism in the mpi tests.)
#include <catch2/catch.hpp>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "nn/kd_loss.h"
#include "test_util.h"
#include "train/distillation.h"
#include "train/model_config.h"
#include "toolkit/model_gradcheck.h"
#include "train/optimizer.h"
#include "training_fixtures.h"

using namespace mt;
using namespace mt::train;
using namespace mt::toolkit;
using namespace trainfix;
using Catch::Contains;

namespace {

// A 3-layer PR-MoE teacher (residual MoE with 4 experts in layer 2), trained 6 iterations.
TrainConfig teacher_run(const fs::path& dir) {
  TrainConfig t = tiny_run(dir);
  t.num_layers = 3;
  t.num_experts = {"4"};
  t.mlp_type = "residual";
  t.moe_loss_coeff = 0.01;
  t.train_iters = 6;
  return t;
}

// A 2-layer student (2 experts in layer 2) distilled from it until kd_stop_step 4.
TrainConfig student_run(const fs::path& dir, const fs::path& teacher_dir) {
  TrainConfig s = tiny_run(dir);
  s.num_experts = {"2"};
  s.moe_loss_coeff = 0.01;
  s.train_iters = 6;
  s.mos = true;
  s.load_teacher = (teacher_dir / "ckpt").string();
  s.num_layers_teacher = 3;
  s.num_experts_teacher = {"4"};
  s.mlp_type_teacher = "residual";
  s.kd_temp = 2.0;
  s.kd_beta_ce = 0.5;
  s.kd_stop_step = 4;
  return s;
}

// A trained teacher in a folder of its own: CTest runs each test case as its own process, in
// parallel, so every case trains its teacher (6 tiny iterations) where no other case writes.
fs::path trained_teacher(const std::string& test) {
  fs::path d = fresh_dir("teacher_" + test);
  run_training(teacher_run(d), quiet_options());
  return d;
}

std::vector<nlohmann::json> metric_lines(const fs::path& file) {
  std::vector<nlohmann::json> out;
  std::istringstream in(slurp(file));
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace

TEST_CASE("the teacher is frozen: no gradients, and training the student leaves it bit-identical", "[train][mos]") {
  TrainConfig cfg = student_run(fresh_dir("frozen"), trained_teacher("frozen"));
  ParallelSetup setup = make_parallel_setup(cfg, parallel::world());
  Teacher teacher(cfg, 50257, setup, 0);
  const ParameterRegistry& tp = teacher.model().parameters();
  REQUIRE_FALSE(tp.flat_grads(ParamGroup::Dense).defined());
  for (const Parameter& p : tp.all()) REQUIRE_FALSE(p.var.requires_grad());
  std::vector<std::vector<double>> before;
  for (const Parameter& p : tp.all()) before.push_back(p.var.value().to_double_vector());

  std::unique_ptr<nn::GptModel> student = make_model(cfg, 50257);
  AdamW adam(student->parameters(), {});
  Tensor tokens = testutil::random_ids({2, 16}, 50257, 5, DType::I32);
  for (int step = 0; step < 3; ++step) {
    student->parameters().zero_grads();
    nn::LossParts parts = student->loss_parts(tokens, tokens, Tensor(), {true, 0});
    Variable kd = nn::kd_loss(parts.logits, teacher.logits(tokens), cfg.kd_temp, cfg.kd_beta_ce);
    REQUIRE(kd.value().item() > 0);
    current_tape().backward(ag::add(parts.total, kd));
    adam.step(1e-2);
  }
  for (size_t i = 0; i < tp.all().size(); ++i) REQUIRE(tp.all()[i].var.value().to_double_vector() == before[i]);
}

TEST_CASE("staged KD: the KD term is on before kd_stop_step and off from it, and a resume crosses it exactly",
          "[train][mos][slow]") {
  fs::path straight = fresh_dir("mos_straight"), split = fresh_dir("mos_split"), teacher = trained_teacher("staged");
  run_training(student_run(straight, teacher), quiet_options());
  std::vector<nlohmann::json> lines = metric_lines(straight / "metrics.jsonl");
  int stopped_at = 0;
  for (const nlohmann::json& j : lines) {
    if (j.value("event", "") == "kd_stopped") stopped_at = j["iteration"].get<int>();
    if (j.value("split", "") != "train") continue;
    int it = j["iteration"].get<int>();
    INFO("iteration " << it);
    REQUIRE(j.contains("kd_loss") == (it < 4));  // iterations 1-3 distil, 4-6 do not
    if (it < 4) REQUIRE(j["kd_loss"].get<double>() > 0);
  }
  REQUIRE(stopped_at == 3);

  TrainerOptions stop = quiet_options();
  stop.stop_after_iters = 2;  // checkpoint at 2, before the stop step
  run_training(student_run(split, teacher), stop);
  TrainConfig resume = student_run(split, teacher);
  resume.load = resume.save;
  run_training(resume, quiet_options());
  REQUIRE(train_losses(straight / "metrics.jsonl") == train_losses(split / "metrics.jsonl"));
  REQUIRE(slurp(straight / "ckpt" / "iter_0000006" / "model.safetensors") ==
          slurp(split / "ckpt" / "iter_0000006" / "model.safetensors"));

  // Without the teacher the same student trains differently from iteration 2 on.
  fs::path plain = fresh_dir("mos_plain");
  TrainConfig no_kd = student_run(plain, teacher);
  no_kd.mos = false;
  run_training(no_kd, quiet_options());
  std::vector<double> with = train_losses(straight / "metrics.jsonl"), without = train_losses(plain / "metrics.jsonl");
  REQUIRE(with[0] == without[0]);
  REQUIRE(with[2] != without[2]);
  for (const fs::path& d : {straight, split, plain, teacher}) fs::remove_all(d);
}

TEST_CASE("student layers initialised from chosen teacher layers", "[train][mos]") {
  TrainConfig cfg = student_run(fresh_dir("init"), trained_teacher("init"));
  cfg.num_experts = {"4"};
  cfg.mlp_type = "residual";
  cfg.student_init_from_teacher_layers = {"0", "1"};
  ParallelSetup setup = make_parallel_setup(cfg, parallel::world());
  Teacher teacher(cfg, 50257, setup, 0);
  std::unique_ptr<nn::GptModel> student = make_model(cfg, 50257);
  init_student_from_teacher(student->parameters(), teacher.model().parameters(), {"2", "1"});
  auto values = [](const ParameterRegistry& r, const std::string& name) {
    return r.get(name).var.value().to_double_vector();
  };
  const ParameterRegistry &s = student->parameters(), &t = teacher.model().parameters();
  REQUIRE(values(s, "layers.0.self_attention.query_key_value.weight") ==
          values(t, "layers.2.self_attention.query_key_value.weight"));
  REQUIRE(values(s, "layers.1.mlp.experts.3.dense_h_to_4h.weight") ==
          values(t, "layers.1.mlp.experts.3.dense_h_to_4h.weight"));
  REQUIRE(values(s, "embedding.word_embeddings.weight") == values(t, "embedding.word_embeddings.weight"));
  // Student layer 1 (MoE) from teacher layer 0 (dense): the tensors do not exist there.
  std::unique_ptr<nn::GptModel> other = make_model(cfg, 50257);
  REQUIRE_THROWS_WITH(init_student_from_teacher(other->parameters(), t, {"0", "0"}),
                      Contains("'layers.0.mlp.gate.weight', which the teacher does not have"));
}

TEST_CASE("distillation errors name the teacher, the tensor and both shapes", "[train][mos][errors]") {
  fs::path teacher = trained_teacher("errors");
  TrainConfig cfg = student_run(fresh_dir("errors"), teacher);
  cfg.load_teacher = "";
  REQUIRE_THROWS_WITH(validate(cfg), Contains("mos needs load_teacher"));
  cfg = student_run(fresh_dir("errors"), teacher);
  cfg.kd_temp = 0;
  REQUIRE_THROWS_WITH(validate(cfg), Contains("kd_temp > 0"));
  cfg = student_run(fresh_dir("errors"), teacher);
  cfg.num_experts_teacher = {"3", "3", "3"};
  REQUIRE_THROWS_WITH(validate(cfg), Contains("the teacher (the *_teacher keys)") && Contains("num_experts"));
  cfg.num_experts_teacher = {"4"};
  cfg.student_init_from_teacher_layers = {"0", "7"};
  REQUIRE_THROWS_WITH(validate(cfg), Contains("'7' is not a teacher layer (0 to 2)"));

  cfg = student_run(fresh_dir("errors"), teacher);
  ParallelSetup setup = make_parallel_setup(cfg, parallel::world());
  cfg.load_teacher = (fresh_dir("no_teacher") / "nothing").string();
  REQUIRE_THROWS_WITH(Teacher(cfg, 50257, setup, 0), Contains("holds no checkpoint: train the teacher first"));
  cfg = student_run(fresh_dir("errors"), teacher);
  cfg.num_experts_teacher = {"2"};  // the checkpoint's layer 2 has 4 experts
  REQUIRE_THROWS_WITH(Teacher(cfg, 50257, setup, 0), Contains("layers.1.mlp.gate.weight") && Contains("f32[4,16]") &&
                                                         Contains("f32[2,16]") && Contains("num_experts [4]"));
}

TEST_CASE("gradcheck of a MoS student includes its KD term (moetrain gradcheck)", "[train][mos][gradcheck][slow]") {
  fs::path teacher = trained_teacher("gradcheck");
  TrainConfig s = student_run(fresh_dir("student_gradcheck"), teacher);
  ModelGradcheckOptions o;
  o.samples = 2;
  ModelGradcheckReport r = gradcheck_model(s, o);
  INFO(format_gradcheck_report(r));
  REQUIRE(r.ok);
  REQUIRE(r.model.find("+ KD from the teacher") != std::string::npos);
  REQUIRE(r.checked > 0);
  // the KD term is really in the checked loss: without it the loss differs
  TrainConfig plain = s;
  plain.mos = false;
  REQUIRE(std::fabs(gradcheck_model(plain, o).loss - r.loss) > 1e-6);
  fs::remove_all(teacher);
}
