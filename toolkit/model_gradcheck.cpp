#include "toolkit/model_gradcheck.h"

#include <fnmatch.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "moe/moe_probe.h"
#include "nn/kd_loss.h"
#include "parallel/communicator.h"
#include "runtime/ops.h"
#include "runtime/random.h"
#include "train/checkpoint_layout.h"
#include "train/distillation.h"
#include "train/model_config.h"
#include "train/parallel_setup.h"

namespace mt::toolkit {
using namespace train;  // the configuration, model and checkpoint helpers the tools drive
namespace {

constexpr int64_t kGpt2Vocab = 50257;

// Records the routing of each MoE layer forward of the first (unperturbed) evaluation, in call
// order, then replays it: every later evaluation uses the recorded decisions and notes when its
// own would have been different. An evaluation may run several forwards (one per data-parallel
// slice): begin() restarts the call order.
class RoutingReplay final : public moe::MoeProbe {
 public:
  // `broken`: the intermediate whose gradient is made 1% wrong (test only; "" = none).
  explicit RoutingReplay(std::string broken) : broken_(std::move(broken)) {}
  Variable on_value(int64_t, const char* name, const Variable& v) override {
    return !broken_.empty() && broken_ == name ? wrong_gradient(v, 1.01) : v;
  }
  const moe::Routing* on_routing(int64_t, const moe::Routing& computed) override {
    size_t call = next_++;
    if (!replaying_) {
      recorded_.push_back(computed);
      return nullptr;
    }
    MT_CHECK(call < recorded_.size(), "gradcheck: more MoE forwards than in the recorded evaluation");
    const moe::Routing& rec = recorded_[call];
    if (computed.expert != rec.expert || computed.slot != rec.slot || computed.capacity != rec.capacity)
      flipped_ = true;
    return &rec;
  }
  void begin() { next_ = 0; }
  void start_replay() { replaying_ = true; }
  bool replaying() const { return replaying_; }
  // Whether the evaluations since the last call kept every decision (and forget them).
  bool take_unflipped() {
    bool ok = !flipped_;
    flipped_ = false;
    return ok;
  }

 private:
  // x itself, whose backward passes factor * dy on: a deliberately broken backward.
  static Variable wrong_gradient(const Variable& x, double factor) {
    Variable out(x.value().reshape(x.shape()));
    if (any_requires_grad({&x}))
      record_op("wrong_gradient", out,
                [xs = x.grad_slot(), factor](const Tensor& dout) { ops::add_(xs.grad_ref(), dout, factor); });
    return out;
  }

  std::string broken_;
  std::vector<moe::Routing> recorded_;
  size_t next_ = 0;
  bool replaying_ = false, flipped_ = false;
};

std::string describe(const TrainConfig& cfg, bool kd, int ranks) {
  std::string experts;
  for (int64_t e : cfg.experts_per_layer()) {
    if (!experts.empty()) experts += ",";
    experts += std::to_string(e);
  }
  char buf[320];
  std::snprintf(buf, sizeof buf, "%lld layers, hidden %lld, %lld heads, experts per layer [%s], top-%lld, %s%s",
                (long long)cfg.num_layers, (long long)cfg.hidden_size, (long long)cfg.num_attention_heads,
                experts.c_str(), (long long)cfg.topk, cfg.mlp_type.c_str(), kd ? ", + KD from the teacher" : "");
  std::string out = buf;
  if (ranks > 1) {
    std::snprintf(buf, sizeof buf, "; %d ranks: tp %lld, ep %lld", ranks, (long long)cfg.tensor_model_parallel_size,
                  (long long)cfg.moe_expert_parallel_size);
    out += buf;
  }
  return out;
}

// One data-parallel slice of the batch: its tokens, labels and the index of its first sample
// (which positions its dropout masks and keys its routing, as in training).
struct Slice {
  Tensor tokens, labels;
  int64_t first_sample = 0;
};

std::unique_ptr<nn::GptModel> f64_model(const TrainConfig& cfg, parallel::Communicator* expert_group,
                                        parallel::Communicator* tensor_group) {
  nn::GptConfig mc = model_config(cfg, kGpt2Vocab, tensor_group);
  mc.dtype = DType::F64;
  mc.device = Device::cpu();
  mc.grad_storage = GradStorage::Flat;  // the gradients compared as flat buffers, whatever the config's ZeRO stage
  return std::make_unique<nn::GptModel>(mc, feed_forward_factory(cfg, mc, expert_group), cfg.moe_loss_coeff);
}

// The training loss of the slices as one step computes it: the mean over the slices of each
// one's loss (+ the KD term against the teacher's constant logits).
Variable step_loss(const nn::GptModel& model, const std::vector<Slice>& slices,
                   const std::vector<Tensor>& teacher_logits, const TrainConfig& cfg) {
  Variable total;
  for (size_t s = 0; s < slices.size(); ++s) {
    nn::LossParts parts =
        model.loss_parts(slices[s].tokens, slices[s].labels, Tensor(), {true, slices[s].first_sample});
    Variable l = parts.total;
    if (!teacher_logits.empty())
      l = ag::add(l, nn::kd_loss(parts.logits, teacher_logits[s], cfg.kd_temp, cfg.kd_beta_ce, Tensor()));
    l = ag::scale(l, 1.0 / double(slices.size()));
    total = total.defined() ? ag::add(total, l) : l;
  }
  return total;
}

// Under mpirun: the parallel model's synchronised gradients, gathered to global tensors (rank 0),
// against the single-process model's on the same slices; fills each row's parallel error.
void compare_parallel(const TrainConfig& cfg, const std::vector<Slice>& slices, nn::GptModel& reference,
                      const ModelGradcheckOptions& options, ModelGradcheckReport& report) {
  parallel::Communicator& world = parallel::world();
  current_tape().clear();  // the reference: the plain gradient of the step's loss (seed 1)
  reference.parameters().zero_grads();
  current_tape().backward(step_loss(reference, slices, {}, cfg));
  ParallelSetup setup = make_parallel_setup(cfg, world);
  std::unique_ptr<nn::GptModel> model = f64_model(cfg, setup.expert_group, setup.tensor_group);
  const Slice& mine = slices[size_t(setup.data_parallel_rank())];
  current_tape().clear();
  model->parameters().zero_grads();
  Variable loss = model->loss_parts(mine.tokens, mine.labels, Tensor(), {true, mine.first_sample}).total;
  current_tape().backward(loss);
  synchronize_gradients(model->parameters(), setup);
  CheckpointLayout layout = checkpoint_layout(setup.layout, setup.groups, world.rank());
  std::vector<NamedTensor> grads = gather_global_tensors(
      model->parameters(), layout, "", [&](ParamGroup g) { return model->parameters().flat_grads(g); });
  if (!layout.writer) return;
  std::map<std::string, Tensor> by_name;
  for (NamedTensor& t : grads) by_name[t.name] = t.tensor;
  for (ModelGradcheckRow& row : report.rows) {
    auto it = by_name.find(row.name);
    MT_CHECK(it != by_name.end(), "gradcheck: the parallel model has no global tensor '", row.name, "'");
    std::vector<double> got = it->second.to_double_vector();
    std::vector<double> want = reference.parameters().get(row.name).var.grad().to_double_vector();
    MT_CHECK(got.size() == want.size(), "gradcheck: '", row.name, "' has ", got.size(), " elements in parallel and ",
             want.size(), " in one process");
    double scale = 1e-3, worst = 0;
    for (double v : want) scale = std::max(scale, std::fabs(v));
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
    row.parallel_rel_error = worst / scale;
    bool ok = row.parallel_rel_error <= options.tolerance;
    row.ok = row.ok && ok;
    report.ok = report.ok && row.ok;
  }
}

}  // namespace

ModelGradcheckReport gradcheck_model(const TrainConfig& config, const ModelGradcheckOptions& options) {
  TrainConfig cfg = config;  // f64 on the host, whatever the config trains on
  cfg.device = "cpu";
  cfg.precision = "fp32";
  MT_CHECK(options.batch >= 1 && options.tokens >= 1 && options.samples >= 1, "gradcheck: --batch, --tokens and ",
           "--samples must be at least 1");
  MT_CHECK(options.tokens <= cfg.max_positions(), "gradcheck: --tokens ", options.tokens, " exceeds the model's ",
           cfg.max_positions(), " positions");
  parallel::Communicator& world = parallel::world();
  int ranks = world.size();
  MT_CHECK(ranks == 1 || !cfg.distills(), "gradcheck: a distillation student is checked in one process (its ",
           "parallel layouts are checked by the MoS training tests); run without mpirun");
  int64_t dp = ranks / std::max<int64_t>(cfg.tensor_model_parallel_size, 1);
  std::unique_ptr<nn::GptModel> model = f64_model(cfg, nullptr, nullptr);  // the single-process model

  // The batch: dp slices of `batch` sequences (one slice in one process), random tokens.
  int64_t b = options.batch, t = options.tokens;
  std::vector<Slice> slices;
  for (int64_t s = 0; s < std::max<int64_t>(dp, 1); ++s) {
    auto ids = [&](uint64_t role) {
      return rand_uniform({b, t}, DType::F64, rng_key(options.seed, uint64_t(s), role, 0), 0, double(kGpt2Vocab))
          .to(DType::I32);
    };
    slices.push_back({ids(1), ids(2), s * b});
  }

  // MoS / KD: the teacher's logits are constants of the student's loss.
  std::vector<Tensor> teacher_logits;
  if (cfg.distills()) {
    ParallelSetup setup = make_parallel_setup(cfg, world);
    Teacher teacher(cfg, kGpt2Vocab, setup, world.rank());
    for (const Slice& s : slices) teacher_logits.push_back(teacher.logits(s.tokens).to(DType::F64));
  }

  std::vector<Variable> inputs;
  for (const Parameter& p : model->parameters().all()) {
    bool chosen = options.params_glob.empty() || fnmatch(options.params_glob.c_str(), p.name.c_str(), 0) == 0;
    p.var.set_requires_grad(chosen);
    if (chosen) inputs.push_back(p.var);
  }
  MT_CHECK(!inputs.empty(), "gradcheck: no parameter matches --params '", options.params_glob,
           "' (names look like layers.1.mlp.gate.weight; quote the pattern in the shell)");

  ModelGradcheckReport report;
  {  // the loss the report shows (a forward of its own, no probe)
    NoGradGuard no_grad;
    report.loss = step_loss(*model, slices, teacher_logits, cfg).value().item();
  }
  // the intermediates whose gradient each op's backward produces
  std::string broken = options.break_backward == "combine"        ? "combine_weights"
                       : options.break_backward == "gate_weights" ? "gate_probs.to_weights"
                                                                  : "";
  MT_CHECK(options.break_backward.empty() || !broken.empty(), "--break-backward takes combine or gate_weights, got '",
           options.break_backward, "'");
  RoutingReplay replay(broken);
  auto loss = [&](const std::vector<Variable>&) {
    moe::MoeProbeScope scope(&replay);
    replay.begin();
    Variable total = step_loss(*model, slices, teacher_logits, cfg);
    if (!replay.replaying()) replay.start_replay();  // the first call is the unperturbed forward
    return total;
  };
  GradcheckOptions g;
  g.eps = options.eps;
  g.tolerance = options.tolerance;
  g.max_entries_per_input = options.samples;
  g.seed = options.seed;
  g.prefer_nonzero = true;
  g.probe_valid = [&] { return replay.take_unflipped(); };
  // Under mpirun rank 0 alone runs the finite differences (the others would repeat them exactly)
  // while the others wait for the parallel comparison.
  GradcheckResult r;
  if (world.rank() == 0)
    r = gradcheck(loss, inputs, g);
  else
    r.inputs.resize(inputs.size());

  report.model = describe(cfg, !teacher_logits.empty(), ranks);
  report.tolerance = options.tolerance;
  report.checked = r.entries_checked;
  report.skipped = r.entries_skipped;
  report.parallel = ranks > 1;
  for (size_t i = 0; i < inputs.size(); ++i) {
    ModelGradcheckRow row;
    row.name = inputs[i].name();
    row.shape = inputs[i].shape();
    row.report = r.inputs[i];
    row.ok = row.report.max_rel_error <= options.tolerance;
    report.ok = report.ok && row.ok;
    report.rows.push_back(row);
  }
  if (ranks > 1) {
    compare_parallel(cfg, slices, *model, options, report);
    Tensor ok = Tensor::from_vector(std::vector<double>{report.ok ? 0.0 : 1.0}, {1});
    world.all_reduce(ok, parallel::ReduceKind::Max);  // every rank exits with rank 0's verdict
    report.ok = ok.to_double_vector()[0] == 0.0;
  }
  return report;
}

std::string format_gradcheck_report(const ModelGradcheckReport& report) {
  std::string out = "model: " + report.model + "\n";
  char buf[512];
  std::snprintf(buf, sizeof buf, "loss (f64): %.10f\n\n%-48s %-14s %7s %7s %10s %10s%s  %s\n", report.loss, "parameter",
                "shape", "checked", "skipped", "max abs", "max rel", report.parallel ? "  parallel" : "",
                "worst entry: analytic / numeric");
  out += buf;
  for (const ModelGradcheckRow& row : report.rows) {
    const GradcheckInputReport& r = row.report;
    std::string worst = r.checked == 0 && r.skipped > 0 ? "every probe would flip routing: not checked" : "-";
    if (r.worst_entry >= 0) {
      std::snprintf(buf, sizeof buf, "[%lld] %+.6e / %+.6e", (long long)r.worst_entry, r.worst_analytic,
                    r.worst_numeric);
      worst = buf;
    }
    std::string parallel;
    if (report.parallel) {
      std::snprintf(buf, sizeof buf, " %9.2e", row.parallel_rel_error);
      parallel = buf;
    }
    std::snprintf(buf, sizeof buf, "%-48s %-14s %7lld %7lld %10.2e %10.2e%s  %s%s\n", row.name.c_str(),
                  shape_str(row.shape).c_str(), (long long)r.checked, (long long)r.skipped, r.max_abs_error,
                  r.max_rel_error, parallel.c_str(), worst.c_str(), row.ok ? "" : "  <-- FAILED");
    out += buf;
  }
  int64_t failed = 0;
  for (const ModelGradcheckRow& row : report.rows) failed += row.ok ? 0 : 1;
  std::snprintf(buf, sizeof buf,
                "\n%s: %lld entries checked in %zu parameter tensors, %lld skipped (a routing decision would "
                "flip), tolerance %.1e relative",
                report.ok ? "PASSED" : "FAILED", (long long)report.checked, report.rows.size(),
                (long long)report.skipped, report.tolerance);
  out += buf;
  if (report.parallel) out += "; the parallel layout's gradients equal the single-process model's (column parallel)";
  if (failed) out += "; " + std::to_string(failed) + " tensors over it";
  return out + "\n";
}

}  // namespace mt::toolkit
