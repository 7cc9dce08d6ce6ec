// `moetrain bench train [--config X.yaml] [--key value ...] [--iters N]`: training throughput of a
// model on random tokens (no data needed): tokens/s and model FLOP/s (6 x matmul weights active
// per token + attention) as a fraction of this machine's SGEMM throughput, both measured in the
// same run. For an MoE configuration the dense twin (num_experts 1, same active parameters) is
// measured too, and the MoE/dense tokens/s ratio reported; for `--precision bf16` on the CPU the
// fp32 twin, and the bf16/fp32 ratio (twins step in alternation, time_against_twin). Under
// mpirun (with the config's tensor_model_parallel_size and moe_expert_parallel_size) it reports
// the whole job's tokens/s, per rank, and against a baseline measured in the same run: one
// process using the cores the job's ranks use (report_parallel says how), named in the output.
// With --device cuda the model trains on the GPU in the config's precision (--precision bf16), and
// the reference is the GPU's own GEMM (cuBLAS, 4096^3, operands in that precision, f32 result):
// the model's FLOP/s against it is the fraction of the machine's matrix throughput it keeps.
// Defaults: 6 layers, hidden 256, 8 heads, seq 256, micro-batch 8, vocab 50304.
#include <cblas.h>
#include <omp.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>

#include "parallel/self_communicator.h"
#include "runtime/allocator.h"
#include "runtime/cpu/gemm_bf16.h"
#include "runtime/kernel_profile.h"
#include "runtime/ops.h"
#include "runtime/random.h"
#include "tools/bench/bench_config.h"
#include "tools/bench/ops_bench.h"
#include "tools/bench/report.h"
#include "tools/bench/timer.h"
#include "train/config.h"
#include "train/model_config.h"
#include "train/parallel_setup.h"
#include "train/trainer.h"

namespace mt::bench {
namespace {

// A ratio as people write it: "1", "2", "1.5".
std::string num_text(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g", v);
  return b;
}

// Seconds per step of the trainer's own step (train::Trainer::train_step, what `moetrain train`
// runs: the micro-batches, loss scaling, gradient reduction, norm, clipping, AdamW) on random
// tokens, one micro-batch per data-parallel rank. `world`: the job (every rank takes part; the
// slowest rank's time) or one process alone. `activation_bytes` (when given): the allocator's peak
// during the timed steps above what stays allocated between steps (weights, gradients, AdamW state).
// `profile` (when given): after the timed steps, `iters` more with the kernel profile on
// (runtime/kernel_profile.h), its rows and their steps' seconds (the timing above stays unprofiled).
struct StepProfile {
  std::vector<kernel_profile::Row> rows;
  double seconds = 0;  // the profiled steps' wall-clock time
  int64_t steps = 0;
};

// The trainer of the benchmark (what `moetrain train` runs, on random tokens, one micro-batch per
// data-parallel rank, quiet), stepped one train_step at a time.
class BenchTrainer {
 public:
  BenchTrainer(train::TrainConfig cfg, parallel::Communicator& world) : gpu_(cfg.device == "cuda") {
    cfg.global_batch_size = cfg.micro_batch_size * (world.size() / cfg.tensor_model_parallel_size);
    train::TrainerOptions o;
    o.quiet = true;
    o.handle_signals = false;
    o.synthetic_data = true;
    o.world = &world;
    trainer_ = std::make_unique<train::Trainer>(cfg, o);
  }
  // One step, finished: on the GPU its queued work is waited for (a one-element read back).
  void step() {
    trainer_->train_step();
    if (gpu_) (void)trainer_->model().parameters().flat_values(ParamGroup::Dense).narrow(0, 1).item();
  }
  double flops_per_token() const { return trainer_->flops_per_token(); }  // active (top-1: dense-equal)

 private:
  bool gpu_;
  std::unique_ptr<train::Trainer> trainer_;
};

double seconds_per_step(const train::TrainConfig& cfg, int64_t iters, double* flops_per_token,
                        parallel::Communicator& world, double* activation_bytes = nullptr,
                        StepProfile* profile = nullptr) {
  BenchTrainer trainer(cfg, world);
  trainer.step();  // warm-up (allocations, caches)
  world.barrier();
  Allocator& memory = allocator_for(cfg.device == "cuda" ? DeviceType::CUDA : DeviceType::CPU);
  memory.reset_peak();
  size_t resident = memory.stats().live_bytes;
  double start = now_seconds();
  for (int64_t i = 0; i < iters; ++i) trainer.step();
  double seconds = (now_seconds() - start) / double(iters);
  if (activation_bytes) *activation_bytes = double(memory.stats().peak_bytes - resident);
  if (profile) {
    kernel_profile::reset();
    kernel_profile::set_enabled(true);
    double profile_start = now_seconds();
    for (int64_t i = 0; i < iters; ++i) trainer.step();
    profile->seconds = now_seconds() - profile_start;
    kernel_profile::set_enabled(false);
    profile->rows = kernel_profile::rows();
    profile->steps = iters;
  }
  if (world.size() > 1) {  // the job's step time is its slowest rank's
    Tensor s = Tensor::from_vector(std::vector<double>{seconds}, {1});
    world.all_reduce(s, parallel::ReduceKind::Max);
    seconds = s.to_double_vector()[0];
  }
  *flops_per_token = trainer.flops_per_token();
  return seconds;
}

// A configuration against its twin (bf16 against fp32, MoE against dense), one process: the two
// trainers step in alternation (time_pair, one step a round), `pairs` rounds. A shared machine's
// speed drifts by 10% within minutes, so twins timed one after the other compare two machines; a
// pair's steps run seconds apart and see the same one. `ratio`: the median over pairs of twin step
// / main step (= main tokens/s / twin tokens/s); `twin_seconds`: the twin's median step.
struct TwinTiming {
  double twin_seconds = 0, ratio = 0, twin_flops_per_token = 0;
};

TwinTiming time_against_twin(const train::TrainConfig& main, const train::TrainConfig& twin, int64_t pairs) {
  parallel::Communicator& world = parallel::world();
  BenchTrainer a(main, world), b(twin, world);
  PairTiming t = time_pair([&] { b.step(); }, [&] { a.step(); }, 0.0, int(pairs));
  return {t.seconds_a, t.ratio_a_over_b, b.flops_per_token()};
}

// Where the job runs: per node (ranks grouped by host name) the cores its ranks may run on (their
// affinity masks) and how many OpenMP threads they run; one process using what the ranks of a
// node use runs min(cores, threads) threads on those cores.
struct JobCores {
  cpu_set_t lead_cpus;                    // the cores of the ranks on rank 0's node
  int lead_threads = 0;                   // min(cores, threads) there: the baseline's threads
  int used = 0;                           // min(cores, threads) summed over the nodes: what the job keeps busy
  int cores = 0, threads = 0, nodes = 0;  // the whole job's
};

// Gathers every rank's host, thread count and affinity mask (collective over `world`).
JobCores job_cores(parallel::Communicator& world) {
  constexpr int kWords = int(sizeof(cpu_set_t) / sizeof(uint64_t));
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  cpu_set_t mine;
  sched_getaffinity(0, sizeof mine, &mine);
  std::vector<int64_t> row = {int64_t(std::hash<std::string>()(host)), omp_get_max_threads()};
  const auto* words = reinterpret_cast<const uint64_t*>(&mine);
  row.insert(row.end(), words, words + kWords);
  Tensor all = Tensor::empty({int64_t(row.size()) * world.size()}, DType::I64);
  world.all_gather(Tensor::from_vector(row, {int64_t(row.size())}), all);
  struct Node {
    cpu_set_t cpus;
    int threads = 0;
  };
  std::map<int64_t, Node> nodes;
  const int64_t* a = all.data<int64_t>();
  for (int r = 0; r < world.size(); ++r, a += row.size()) {
    auto [it, fresh] = nodes.try_emplace(a[0]);
    if (fresh) CPU_ZERO(&it->second.cpus);
    cpu_set_t rank_cpus;
    std::memcpy(&rank_cpus, a + 2, sizeof rank_cpus);
    CPU_OR(&it->second.cpus, &it->second.cpus, &rank_cpus);
    it->second.threads += int(a[1]);
  }
  JobCores job;
  for (const auto& [hash, node] : nodes) {
    int used = std::min(CPU_COUNT(&node.cpus), node.threads);
    job.used += used;
    job.cores += CPU_COUNT(&node.cpus);
    job.threads += node.threads;
    if (hash == all.data<int64_t>()[0]) job.lead_cpus = node.cpus, job.lead_threads = used;
  }
  job.nodes = int(nodes.size());
  return job;
}

// While alive, this process runs on `cpus` with `threads` OpenMP and OpenBLAS threads (under
// mpirun a rank is usually bound to one core); then its own cores and thread count come back.
class OnCores {
 public:
  OnCores(const cpu_set_t& cpus, int threads) : threads_(omp_get_max_threads()) {
    sched_getaffinity(0, sizeof cpus_, &cpus_);
    take(cpus, threads);
  }
  ~OnCores() { take(cpus_, threads_); }

 private:
  // Every thread of the OpenMP pool sets its own mask (a thread keeps the one it started with).
  static void take(const cpu_set_t& cpus, int threads) {
    sched_setaffinity(0, sizeof cpus, &cpus);
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
#pragma omp parallel
    sched_setaffinity(0, sizeof cpus, &cpus);
  }
  cpu_set_t cpus_;
  int threads_;
};

// Under mpirun: tokens/s of the whole job and per rank, against a baseline measured in the same
// run while the other ranks wait (asleep, parallel/watchdog.h): on the CPU rank 0 alone with the
// job's cores on its node and as many threads as the ranks there run (at most one per core), so
// the ratio shows what splitting the work over ranks gains or costs on the same cores; with
// --device cuda rank 0 alone on its GPU. Ideal ratio: the job's cores (GPUs) / the baseline's.
void report_parallel(const Reporter& rep, const train::TrainConfig& cfg, int64_t iters, bool lead) {
  parallel::Communicator& world = parallel::world();
  train::ParallelSetup setup = train::make_parallel_setup(cfg, world);
  JobCores cores = job_cores(world);
  double tokens = double(cfg.micro_batch_size * cfg.seq_length), flops = 0;
  double job_seconds = seconds_per_step(cfg, iters, &flops, world);
  double job_tok_s = tokens * double(setup.data_parallel) / job_seconds;
  train::TrainConfig alone = cfg;
  alone.tensor_model_parallel_size = alone.moe_expert_parallel_size = 1;
  bool gpu = cfg.device == "cuda";
  int n = world.size();
  double base_seconds = 0;
  if (lead) {
    std::optional<OnCores> on_cores;
    if (!gpu) on_cores.emplace(cores.lead_cpus, cores.lead_threads);
    std::unique_ptr<parallel::Communicator> self = parallel::make_self_communicator();
    base_seconds = seconds_per_step(alone, iters, &flops, *self);
  }
  world.barrier();
  if (!lead) return;
  double base_tok_s = tokens / base_seconds;
  double ideal = gpu ? double(n) : double(cores.used) / double(cores.lead_threads);
  char note[200], baseline[200], job[200];
  std::snprintf(note, sizeof note, "%d ranks: tp %d x dp %lld, ep %d; whole job", n, setup.layout.tensor_parallel,
                (long long)setup.data_parallel, setup.layout.expert_parallel);
  std::snprintf(baseline, sizeof baseline,
                "baseline: one process, %d threads on the %d cores the ranks use on its node, same run",
                cores.lead_threads, CPU_COUNT(&cores.lead_cpus));
  std::snprintf(job, sizeof job, "the job: %d ranks, %d threads on %d cores, %d node(s)", n, cores.threads, cores.cores,
                cores.nodes);
  rep.line("parallel_train_tokens_per_s", job_tok_s, "tokens/s", -1, note);
  rep.line("parallel_train_tokens_per_s_per_rank", job_tok_s / n, "tokens/s");
  if (gpu) {
    rep.line("baseline_train_tokens_per_s", base_tok_s, "tokens/s", -1,
             "baseline: one process on one GPU (rank 0's), the others idle, same run");
  } else {
    rep.line("baseline_train_tokens_per_s", base_tok_s, "tokens/s", -1, baseline);
    rep.line("baseline_threads", cores.lead_threads, "threads", -1, job);
  }
  rep.line("job_over_baseline_tokens_per_s", job_tok_s / base_tok_s, "ratio", job_tok_s / base_tok_s,
           "job tokens/s / the baseline's (ideal: " + num_text(ideal) +
               (gpu ? " = the GPUs)" : " = the cores the job keeps busy / the baseline's)"));
  rep.line("parallel_efficiency", job_tok_s / (base_tok_s * ideal), "ratio", job_tok_s / (base_tok_s * ideal),
           "job tokens/s / (the baseline's x " + num_text(ideal) + ")");
}

// This machine's SGEMM (CBLAS, 1024^3): the CPU reference, timed in bursts of ~0.2 s, two before
// and two after the trainer's timed steps (on a shared machine the SGEMM rate drifts by 10% within
// minutes; bursts between the steps would slow the steps after them); the median burst is the
// reference.
class HostSgemmReference {
 public:
  HostSgemmReference()
      : a_(rand_uniform({kSize, kSize}, DType::F32, rng_key(3, 0, 0, 0), -1, 1)),
        b_(rand_uniform({kSize, kSize}, DType::F32, rng_key(4, 0, 0, 0), -1, 1)),
        c_(Tensor::empty({kSize, kSize}, DType::F32)) {
    call();  // warm-up
    sample();
  }
  void sample() {
    for (int burst = 0; burst < 2; ++burst) seconds_.push_back(time_per_call([&] { call(); }, 0.2, 1));
  }
  double gflops() const {
    std::vector<double> s = seconds_;
    std::sort(s.begin(), s.end());
    return 2.0 * double(kSize * kSize * kSize) / s[s.size() / 2] * 1e-9;
  }
  size_t bursts() const { return seconds_.size(); }

 private:
  static constexpr int64_t kSize = 1024;
  void call() { raw_sgemm(a_, b_, c_); }
  Tensor a_, b_, c_;
  std::vector<double> seconds_;
};

// The GPU's GEMM (4096^3 through ops::matmul = cuBLAS) with operands in the compute precision and
// an f32 result: the device reference. Ten calls between two reads back.
double device_gemm_gflops(const Reporter& rep, DType compute) {
  int64_t ref = 4096, calls = 10;
  Tensor ra = rand_uniform({ref, ref}, DType::F32, rng_key(3, 0, 0, 0), -1, 1).to(compute).to(Device::cuda());
  Tensor rb = rand_uniform({ref, ref}, DType::F32, rng_key(4, 0, 0, 0), -1, 1).to(compute).to(Device::cuda());
  Tensor rc = Tensor::empty({ref, ref}, DType::F32, Device::cuda());
  auto burst = [&] {
    for (int64_t i = 0; i < calls; ++i) ops::matmul(ra, false, rb, false, rc);
    (void)rc.reshape({-1}).narrow(0, 1).item();  // waits for the queued GEMMs
  };
  burst();  // warm-up (cuBLAS picks its kernel)
  double s = time_per_call(burst, 0.5, 3) / double(calls);
  double gflops = 2.0 * double(ref * ref * ref) / s * 1e-9;
  rep.line(std::string("gpu_gemm_4096_") + dtype_name(compute), gflops, "GFLOP/s", -1,
           "cuBLAS through ops::matmul, f32 result: the reference");
  return gflops;
}

// The profiled steps, kernel by kernel: ms per step and the share of the step; what is left is the
// time outside kernels (autograd bookkeeping, allocation, the trainer's loop).
void report_profile(const Reporter& rep, const StepProfile& p, const std::string& prefix) {
  double step_ms = 1e3 * p.seconds / double(p.steps), kernels_ms = 0;
  if (!rep.json())
    std::printf("\nwhere a step's time goes (%lld profiled steps, %.1f ms each):\n", (long long)p.steps, step_ms);
  for (const auto& row : p.rows) {
    double ms = 1e3 * row.seconds / double(p.steps);
    kernels_ms += ms;
    char calls[64];
    std::snprintf(calls, sizeof calls, "%.4g calls per step", double(row.calls) / double(p.steps));
    rep.line(prefix + "profile " + row.name, ms, "ms", ms / step_ms, calls);
  }
  rep.line(prefix + "profile outside kernels", step_ms - kernels_ms, "ms", (step_ms - kernels_ms) / step_ms,
           "autograd, allocation, the trainer's loop");
}

}  // namespace

train::TrainConfig bench_model_config(const std::string& config_path, const std::vector<std::string>& overrides) {
  train::TrainConfig cfg;
  cfg.num_layers = 6;
  cfg.hidden_size = 256;
  cfg.num_attention_heads = 8;
  cfg.seq_length = 256;
  cfg.micro_batch_size = 8;
  cfg.hidden_dropout = cfg.attention_dropout = 0.0;
  cfg.train_iters = 1;                  // (validation wants a length and data;
  cfg.data_path = {"(random tokens)"};  //  the benchmark reads none)
  if (!config_path.empty()) cfg = train::load_config_file(config_path, cfg);
  std::vector<std::string> rest = train::apply_overrides(cfg, overrides);
  MT_CHECK(rest.empty(), "unexpected argument '", rest.empty() ? "" : rest[0], "'");
  return cfg;
}

int run_train_bench(const BenchOptions& opt, const std::string& config_path, const std::vector<std::string>& overrides,
                    int64_t iters) {
  MT_CHECK(iters >= 1,
           "bench train: --iters must be 1 or more (the timed steps, and the pairs of steps of a twin); got ", iters);
  train::TrainConfig cfg = bench_model_config(config_path, overrides);
  bool moe = cfg.is_moe();
  Reporter rep("train", opt.json);
  bool lead = parallel::world().rank() == 0;
  if (!opt.json && lead)
    std::printf("moetrain bench train: %lld layers, hidden %lld, %lld heads, seq %lld, micro-batch %lld%s\n",
                (long long)cfg.num_layers, (long long)cfg.hidden_size, (long long)cfg.num_attention_heads,
                (long long)cfg.seq_length, (long long)cfg.micro_batch_size,
                moe ? (", MoE: num_experts " + cfg.num_experts[0] + (cfg.num_experts.size() > 1 ? " ..." : "") +
                       ", top-" + std::to_string(cfg.topk) + ", " + cfg.mlp_type)
                          .c_str()
                    : "");
  if (lead) rep.header();
  if (lead && cfg.device != "cuda") report_cpu_features(rep);
  if (parallel::world().size() > 1) {
    report_parallel(rep, cfg, iters, lead);
    return 0;
  }
  bool gpu = cfg.device == "cuda", cpu_bf16 = !gpu && cfg.compute_dtype() == DType::BF16;
  std::optional<HostSgemmReference> host_ref;
  if (!gpu) host_ref.emplace();
  double bf16_gflops = cpu_bf16 ? report_bf16_gemm_reference(rep) : 0.0;
  double tokens = double(cfg.micro_batch_size * cfg.seq_length), flops = 0;
  double activation_bytes = 0;
  StepProfile profile;
  double seconds =
      seconds_per_step(cfg, iters, &flops, parallel::world(), &activation_bytes, opt.profile ? &profile : nullptr);
  if (host_ref) host_ref->sample();
  double sgemm_gflops = gpu ? device_gemm_gflops(rep, cfg.compute_dtype()) : host_ref->gflops();
  if (host_ref)
    rep.line("sgemm_raw_1024", sgemm_gflops, "GFLOP/s", -1,
             "cblas_sgemm, the reference: median of " + std::to_string(host_ref->bursts()) +
                 " bursts before and after the timed steps");
  double tok_s = tokens / seconds, gflops = tok_s * flops * 1e-9;
  std::string prefix = moe ? "moe_" : "";
  rep.line(prefix + "train_step_seconds", seconds, "s", -1,
           "the trainer's step: forward + backward + clip + AdamW, one micro-batch");
  rep.line(prefix + "train_tokens_per_s", tok_s, "tokens/s");
  rep.line(prefix + "train_model_gflops", gflops, "GFLOP/s", gflops / sgemm_gflops,
           cfg.device == "cuda" ? "ratio = model FLOP/s / the GPU's GEMM FLOP/s (active FLOPs: 6N + 6LTh per token)"
                                : "ratio = model FLOP/s / SGEMM FLOP/s (active FLOPs: 6N + 6LTh per token)");
  if (cpu_bf16)
    rep.line(prefix + "train_model_gflops_vs_bf16_gemm", gflops, "GFLOP/s", gflops / bf16_gflops,
             "ratio = model FLOP/s / the bf16 GEMM reference's");
  rep.line(prefix + "train_peak_activation_mib", activation_bytes / double(1 << 20), "MiB", -1,
           std::string("allocator peak in a step above weights, gradients and AdamW state; checkpoint_activations ") +
               (cfg.checkpoint_activations || cfg.deepspeed_activation_checkpointing ? "on" : "off"));
  if (cpu_bf16) {
    train::TrainConfig fp32 = cfg;
    fp32.precision = "fp32";
    TwinTiming t = time_against_twin(cfg, fp32, iters);
    double fp32_tok_s = tokens / t.twin_seconds;
    rep.line(prefix + "fp32_train_tokens_per_s", fp32_tok_s, "tokens/s",
             fp32_tok_s * t.twin_flops_per_token * 1e-9 / sgemm_gflops,
             "the fp32 twin, its median step alternating with bf16's (ratio: its model FLOP/s / SGEMM FLOP/s)");
    rep.line(prefix + "bf16_over_fp32_tokens_per_s", t.ratio, "ratio", t.ratio,
             "median over " + std::to_string(iters) + " pairs of steps alternating in one process of fp32 step / " +
                 "bf16 step; bf16 GEMM path: " + cpu::bf16_gemm_description());
  }
  if (opt.profile) report_profile(rep, profile, prefix);
  if (moe) {
    train::TrainConfig dense = cfg;
    dense.num_experts = {"1"};
    TwinTiming t = time_against_twin(cfg, dense, iters);
    rep.line("dense_train_tokens_per_s", tokens / t.twin_seconds, "tokens/s", -1,
             "the dense twin (num_experts 1), its median step alternating with the MoE model's");
    rep.line("moe_over_dense_tokens_per_s", t.ratio, "ratio", t.ratio,
             "median over " + std::to_string(iters) + " pairs of steps alternating in one process of dense step / " +
                 "MoE step");
  }
  return 0;
}

}  // namespace mt::bench
