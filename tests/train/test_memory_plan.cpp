// The memory plan (train/memory_plan.h): its parameter counts against built models, ZeRO's
// partition, and its bytes against the runtime allocator's high-water mark of real training steps
// (dense, MoE, PR-MoE, MoS with a teacher checkpoint; fp32 and bf16; checkpointing on and off).
#include <catch2/catch.hpp>
#include <cstdio>

#include "parallel/communicator.h"
#include "runtime/cpu/gemm_bf16.h"
#include "runtime/emulated_cuda.h"
#include "train/memory_measure.h"
#include "train/memory_plan.h"
#include "train/model_config.h"
#include "training_fixtures.h"

using namespace mt;
using namespace mt::train;
using namespace trainfix;

namespace {

constexpr int64_t kVocab = 50257;  // the bundled GPT-2 tokenizer's, padded to 50304

// hidden 256, 4 heads, 4 layers, seq 128, micro-batch 4: big enough that the layers count next to
// the logits, fast on two cores.
TrainConfig grid_base(const fs::path& dir) {
  TrainConfig c = tiny_run(dir);
  c.num_layers = 4;
  c.hidden_size = 256;
  c.num_attention_heads = 4;
  c.seq_length = 128;
  c.max_position_embeddings = 128;
  c.micro_batch_size = 4;
  c.global_batch_size = 4;
  c.train_iters = 3;
  c.eval_interval = 1000;
  c.log_interval = 1000;
  c.moe_loss_coeff = 0.01;
  return c;
}

// The step peak to `peak_tolerance` (the grid lands within 0.5%; 2% leaves room for another
// machine's allocations and still catches a missed tensor: the widened path's f32 copies were 7.9%).
void check_against_plan(const std::string& name, const TrainConfig& cfg, bool synthetic = true,
                        double peak_tolerance = 0.10) {
  MemoryPlan plan = plan_memory(cfg, plan_options_for(cfg, 1, kVocab));
  MeasuredMemory m = measure_training_memory(cfg, parallel::world(), synthetic);
  double planned = plan.persistent() + plan.activations;
  std::printf("%-34s construction %7.1f MB planned %7.1f | ", name.c_str(), m.construction / 1e6,
              plan.construction_peak / 1e6);
  std::printf("persistent %7.1f MB planned %7.1f | peak %7.1f MB planned %7.1f (%+.1f%%) | at %s\n", m.persistent / 1e6,
              plan.persistent() / 1e6, m.peak / 1e6, planned / 1e6, 100.0 * (planned - m.peak) / m.peak,
              plan.peak_moment.c_str());
  INFO(name << ": measured peak " << m.peak << ", planned " << planned << " (at " << plan.peak_moment << ")");
  CHECK(plan.persistent() == Approx(m.persistent).epsilon(0.01));
  CHECK(plan.construction_peak == Approx(m.construction).epsilon(0.10));
  CHECK(planned == Approx(m.peak).epsilon(peak_tolerance));
  // the activations alone (the logits and what the layers keep), not just the total
  CHECK(plan.activations == Approx(m.peak - m.persistent).epsilon(0.10));
}

}  // namespace

TEST_CASE("plan: parameter counts per rank equal the built models' flat buffers", "[plan]") {
  TrainConfig c = grid_base(fresh_dir("plan_counts"));
  c.num_experts = {"4", "8"};
  c.mlp_type = "residual";
  c.moe_ffn_hidden_size = 96;                   // experts narrower than the dense MLP
  c.moe_shared_expert_intermediate_size = 160;  // and a shared expert
  ParameterCounts n = count_rank_parameters(c, kVocab);
  std::unique_ptr<nn::GptModel> model = make_model(c, kVocab);
  const ParameterRegistry& p = model->parameters();
  CHECK(n.dense == p.numel(ParamGroup::Dense));
  CHECK(n.expert == p.numel(ParamGroup::Expert));
  CHECK(n.dense_flat == p.flat_values(ParamGroup::Dense).numel());
  CHECK(n.expert_flat == p.flat_values(ParamGroup::Expert).numel());
  // the list ZeRO 2's plan cuts into buckets: the registry's tensors, in its order, with their layers
  std::vector<ParameterEntry> list = rank_parameter_list(c, kVocab);
  std::vector<int64_t> layers = model->parameter_layers();
  REQUIRE(list.size() == p.all().size());
  for (size_t i = 0; i < list.size(); ++i) {
    INFO(p.all()[i].name);
    CHECK(list[i].numel == p.all()[i].var.value().numel());
    CHECK(list[i].expert == (p.all()[i].group() == ParamGroup::Expert));
    CHECK(list[i].layer == layers[i]);
  }
  // expert parallelism divides the experts; tensor parallelism the dense matrices (not MoE layers)
  CHECK(count_rank_parameters(c, kVocab, 1, 2).expert * 2 == count_rank_parameters(c, kVocab, 1, 1).expert);
  CHECK(count_rank_parameters(c, kVocab, 2, 1).expert == count_rank_parameters(c, kVocab, 1, 1).expert);
  CHECK(count_rank_parameters(c, kVocab, 2, 1).dense < count_rank_parameters(c, kVocab, 1, 1).dense);
}

TEST_CASE("plan: ZeRO 1 partitions AdamW's state and ZeRO 2 the gradients, dense over dp, experts over edp", "[plan]") {
  TrainConfig c = grid_base(fresh_dir("plan_zero"));
  c.num_experts = {"8"};
  c.moe_expert_parallel_size = 2;
  MemoryPlanOptions o;
  o.ranks = 8;
  o.vocab_size = kVocab;
  MemoryPlan s0 = plan_memory(c, o);
  c.zero_stage = 1;
  MemoryPlan s1 = plan_memory(c, o);
  c.zero_stage = 2;
  MemoryPlan s2 = plan_memory(c, o);
  REQUIRE(s0.dp == 8);
  REQUIRE(s0.edp == 4);
  auto chunk = [](int64_t n, int64_t parts) { return double((n + parts - 1) / parts); };
  double owned = chunk(s0.params.dense_flat, 8) + chunk(s0.params.expert_flat, 4);
  CHECK(s0.optimizer == 8.0 * double(s0.params.flat()));
  CHECK(s1.optimizer == 8.0 * owned);
  CHECK(s1.gradients == s0.gradients);
  CHECK(s2.gradients == 4.0 * owned);
  CHECK(s2.comm_buffers > 0);
  CHECK(s1.weights == s0.weights);  // the f32 weights are the master copy the forward reads: whole
}

TEST_CASE("plan: the host-emulated device holds what the CPU's GEMMs hold", "[plan]") {
  // On a CPU whose GEMMs widen 16-bit operands, the rounded operands are held in f32 (4 bytes a
  // weight for the registry's copy); cuBLAS takes them as they are (2 bytes), and the device
  // emulated on the host runs the CPU's kernels, so it holds what the CPU holds.
  TrainConfig c = grid_base(fresh_dir("plan_emulated"));
  c.precision = "bf16";
  struct WidenedScope {  // the CPU's choice back, whatever happens below
    cpu::Bf16GemmPath chosen = cpu::bf16_gemm_path();
    WidenedScope() { cpu::set_bf16_gemm_path(cpu::Bf16GemmPath::Widened); }
    ~WidenedScope() { cpu::set_bf16_gemm_path(chosen); }
  } widened;
  CHECK(plan_options_for(c, 1, kVocab).gemm_widens_half);
  c.device = "cuda";
  if (!mt::cuda_emulated() && !mt::emulation_requested_by_environment())
    CHECK_FALSE(plan_options_for(c, 1, kVocab).gemm_widens_half);
  mt::emulate_cuda_on_host();
  MemoryPlanOptions o = plan_options_for(c, 1, kVocab);
  CHECK(o.gemm_widens_half);
  MemoryPlan p = plan_memory(c, o);
  CHECK(p.half_weights == 4.0 * double(p.params.flat()));
}

TEST_CASE("plan: a model that cannot fit is refused with the changes that would make it fit", "[plan]") {
  TrainConfig c = grid_base(fresh_dir("plan_refuse"));
  c.num_experts = {"64"};
  c.micro_batch_size = 8;
  c.global_batch_size = 64;
  MemoryPlanOptions o = plan_options_for(c, 8, kVocab);
  MemoryPlan p = plan_memory(c, o);
  PlanDevice small{"--memory-gb test", 0.8 * p.total(), 1, 0};
  std::string msg = does_not_fit_message(c, o, small);
  INFO(msg);
  CHECK(msg.find("does not fit") == 0);
  CHECK(msg.find("use --") != std::string::npos);
  PlanDevice big{"--memory-gb test", 2 * p.total(), 1, 0};
  CHECK(does_not_fit_message(c, o, big).empty());
  PlanDevice tiny{"--memory-gb test", 1e6, 1, 0};
  CHECK(does_not_fit_message(c, o, tiny).find("more ranks") != std::string::npos);
  // no single change is enough: the changes combined, each flag named once at its last value
  MemoryPlan all = plan_memory(
      [&] {
        TrainConfig q = c;
        q.zero_stage = 2;
        q.moe_expert_parallel_size = 8;
        q.checkpoint_activations = true;
        q.micro_batch_size = 1;
        return q;
      }(),
      o);
  PlanDevice tight{"--memory-gb test", 1.01 * all.total(), 1, 0};
  std::string combined = does_not_fit_message(c, o, tight);
  INFO(combined);
  CHECK(combined.find("together") != std::string::npos);
  for (const char* flag : {"--moe-expert-parallel-size", "--micro-batch-size"}) {
    size_t first = combined.find(flag);
    CHECK((first == std::string::npos || combined.find(flag, first + 1) == std::string::npos));
  }
}

TEST_CASE("plan: planned peak within 2% of the allocator's measured peak, dense and MoE, ZeRO 2", "[plan][slow]") {
  fs::path dir = fresh_dir("plan_grid");
  TrainConfig dense = grid_base(dir);
  check_against_plan("dense fp32", dense, true, 0.02);
  TrainConfig c = dense;
  c.checkpoint_activations = true;
  check_against_plan("dense fp32 checkpointed", c, true, 0.02);
  c = dense;
  c.precision = "bf16";
  check_against_plan("dense bf16", c, true, 0.02);
  TrainConfig moe = dense;
  moe.num_experts = {"8"};
  check_against_plan("MoE-8 top-1 fp32", moe, true, 0.02);
  c = moe;
  c.precision = "bf16";
  c.checkpoint_activations = true;
  check_against_plan("MoE-8 top-1 bf16 checkpointed", c, true, 0.02);
  c = moe;
  c.disable_moe_token_dropping = true;
  c.topk = 2;
  check_against_plan("MoE-8 top-2 dropless fp32", c, true, 0.02);
  c = dense;  // a chunk of 12 layers: its recompute and backward, not the logits, make the peak
  c.num_layers = 12;
  c.checkpoint_activations = true;
  c.checkpoint_num_layers = 12;
  check_against_plan("dense fp32, 12 layers in one chunk", c, true, 0.02);
  c = moe;
  c.num_layers = 8;
  c.precision = "bf16";
  c.checkpoint_activations = true;
  c.checkpoint_num_layers = 4;
  c.ffn_hidden_size = 4096;
  check_against_plan("MoE-8 bf16 ffn 4096, chunks of 4", c, true, 0.02);
  TrainConfig pr = dense;
  pr.num_experts = {"4", "8"};
  pr.mlp_type = "residual";
  pr.precision = "bf16";
  check_against_plan("PR-MoE-4/8 bf16", pr, true, 0.02);
  // ZeRO 2 in one process: no flat gradient buffer, each layer's gradients added into the (whole)
  // shard as its backward ends (over ranks: parallel.plan_measured_*_zero2)
  c = moe;
  c.zero_stage = 2;
  check_against_plan("MoE-8 top-1 fp32 ZeRO 2", c, true, 0.02);
  c = pr;
  c.zero_stage = 2;
  c.checkpoint_activations = true;
  check_against_plan("PR-MoE-4/8 bf16 ZeRO 2 checkpointed", c, true, 0.02);
  // fine-grained experts (16 of width 256, top-4) with a shared expert (issue 21)
  for (std::string precision : {"fp32", "bf16"}) {
    c = moe;
    c.num_experts = {"16"};
    c.topk = 4;
    c.moe_ffn_hidden_size = 256;
    c.moe_shared_expert_intermediate_size = 512;
    c.precision = precision;
    check_against_plan("MoE-16 fine-grained + shared " + precision, c, true, 0.02);
  }
  // a CPU without bf16 units (its GEMMs widen 16-bit operands, so the rounded operands are held
  // in f32: 4-byte saved inputs and weight copy, the logits' gradient over the logits), and fp16,
  // which always widens on the CPU
  cpu::Bf16GemmPath chosen = cpu::bf16_gemm_path();
  cpu::set_bf16_gemm_path(cpu::Bf16GemmPath::Widened);
  c = dense;
  c.precision = "bf16";
  check_against_plan("dense bf16 widened", c, true, 0.02);
  cpu::set_bf16_gemm_path(chosen);
  c = pr;
  c.precision = "fp16";
  check_against_plan("PR-MoE-4/8 fp16", c, true, 0.02);
  fs::remove_all(dir);
}

TEST_CASE("plan: planned peak within 10% of the measured peak with a MoS teacher", "[plan][slow]") {
  fs::path dir = fresh_dir("plan_mos");
  TrainConfig teacher = grid_base(dir / "teacher");
  teacher.num_experts = {"4", "8"};
  teacher.mlp_type = "residual";
  teacher.train_iters = 1;
  teacher.lr_warmup_iters = 0;
  run_training(teacher, quiet_options());
  TrainConfig student = grid_base(dir / "student");
  student.num_layers = 2;
  student.num_experts = {"4"};
  student.mlp_type = "residual";
  student.mos = true;
  student.load_teacher = teacher.save;
  student.num_layers_teacher = 4;
  student.num_experts_teacher = {"4", "8"};
  student.save.clear();
  check_against_plan("MoS: PR-MoE student, teacher fp32", student, false);
  student.precision = "bf16";
  check_against_plan("MoS: PR-MoE student, teacher bf16", student, false);
  fs::remove_all(dir);
}
