// The memory plan (train/memory_plan.h); docs/plan.md derives every line from the code it follows.
#include "train/memory_plan.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

#include "moe/router.h"
#include "runtime/device.h"
#include "runtime/emulated_cuda.h"
#include "runtime/error.h"
#include "runtime/ops.h"
#include "train/zero_gradients.h"

namespace mt::train {
namespace {

constexpr double kGB = 1e9;

// One micro-batch's sizes on this rank. Every tensor rank sees all the tokens; attention heads,
// the dense MLP's columns and the vocabulary are split over tp. `lo`: bytes per element of a
// linear layer's saved input (its copy rounded to bf16/f16 under autocast, held in f32 where the
// GEMMs widen 16-bit operands: ops::rounded_operand_dtype; in fp32 the input itself).
struct Dims {
  double n = 0, h = 0, f = 0, heads = 0, vocab = 0, tp = 1, ep = 1;
  double fe = 0;         // an expert's (and the residual MLP's) width: moe_ffn_hidden_size, else f
  double shared = 0;     // the shared expert's width (moe_shared_expert_intermediate_size), 0: none
  double lo = 4;         // a linear's saved input
  double lo_copy = 0;    // a rounded copy of an f32 input that fp32 would share (autocast: lo; else 0)
  double qkv = 4;        // attention's saved qkv: rounded to bf16 under bf16 autocast, else as it is
  double proj_copy = 0;  // the attention output's rounded copy for the output projection (autocast)
  bool mixed = false;
};

// Rows of one MoE layer's expert buffers on this rank (moe/moe_layer.cpp; dispatch is index based:
// only kept assignments have a row, no E x C padding).
struct MoeRows {
  double sent = 0;        // rows this rank dispatches (its kept assignments)
  double received = 0;    // rows its local experts run (from the whole expert group)
  double per_expert = 0;  // rows of the largest local expert
};

enum class RowsCase { Bound, Worst };

// With dropping: C = max(ceil(k cf S / E), min_capacity) per expert and source rank, so a rank
// sends at most min(kS, E C) rows and receives at most min(ep kS, E C); an expert runs at most
// ep C. Dropless: kS rows are sent; received, the balanced kS (Bound) or every token of the
// expert group to this rank's experts, ep kS (Worst), one expert taking them all.
MoeRows moe_rows(const TrainConfig& cfg, const Dims& d, int64_t experts, RowsCase rows_case) {
  double k = double(std::min<int64_t>(cfg.topk, experts)), local = double(experts) / d.ep;
  MoeRows r;
  if (!cfg.disable_moe_token_dropping) {
    double c = double(
        moe::expert_capacity(int64_t(d.n), experts, int64_t(k), cfg.moe_train_capacity_factor, cfg.moe_min_capacity));
    r.sent = std::min(k * d.n, double(experts) * c);
    r.received = std::min(d.ep * k * d.n, double(experts) * c);
    r.per_expert = std::min(d.ep * c, r.received);
    return r;
  }
  r.sent = k * d.n;
  r.received = rows_case == RowsCase::Worst ? d.ep * k * d.n : k * d.n;
  r.per_expert = rows_case == RowsCase::Worst ? r.received : r.received / local;
  return r;
}

struct LayerBytes {
  double saved = 0;      // what the layer's backward functions keep (its input included)
  double transient = 0;  // what its backward adds at its largest moment
};

// An MLP's gelu backward holds d(gelu out) and d(fc1 out), f32 [rows, width], after fc2's backward
// released its saved input.
double mlp_backward(const Dims& d, double rows, double width) {
  return (8.0 - d.lo) * rows * width;
}

// A transformer layer (nn/gpt.cpp GptModel::layers), `experts` <= 1: the dense MLP.
LayerBytes layer_bytes(const TrainConfig& cfg, const Dims& d, int64_t experts, RowsCase rows_case) {
  double n = d.n, h = d.h, f = d.f, tp = d.tp;
  LayerBytes b;
  // ln1 keeps x and mean/rstd; qkv's linear its input; attention qkv, out and lse; the projection
  // its input (in fp32 the attention output itself); ln2 the residual stream and mean/rstd.
  b.saved = 4 * n * h + 8 * n + d.lo * n * h + d.qkv * 3 * n * h / tp + 4 * n * h / tp + 4 * n * d.heads / tp +
            d.proj_copy * n * h / tp + 4 * n * h + 8 * n;
  double grads = 8 * n * h;  // the residual stream's gradient and the branch's
  if (experts <= 1) {        // fc1 keeps its input, gelu fc1's output, fc2 gelu's output
    b.saved += d.lo * n * h + 4 * n * f / tp + d.lo * n * f / tp;
    b.transient = grads + mlp_backward(d, n, f / tp);
    return b;
  }
  MoeRows r = moe_rows(cfg, d, experts, rows_case);
  double k = double(std::min<int64_t>(cfg.topk, experts)), e = double(experts);
  f = d.fe;                                                     // the experts' width
  b.saved += 4 * n * h                                          // the gate's f32 input (ln2's output)
             + 4 * n * e + 4 * n * k                            // softmax's probabilities, combine's weights
             + 8 * (2 * n * k + 2 * r.sent)                     // the routing's index tensors (i64)
             + (d.lo * h + 4 * f + d.lo * f) * r.received       // the experts' fc1 input, gelu, fc2 input
             + 4 * r.sent * h;                                  // the experts' outputs, kept by combine
  if (cfg.noisy_gate_policy == "Jitter") b.saved += 8 * n * h;  // the noise and the noisy gate input
  double experts_backward = 4 * r.sent * h + 4 * r.received * h + mlp_backward(d, r.per_expert, f);
  if (d.shared > 0) {  // the shared expert: fc1's rounded input copy (f32: the gate's), gelu's input, fc2's input
    b.saved += d.lo_copy * n * h + 4 * n * d.shared + d.lo * n * d.shared;
    experts_backward = std::max(experts_backward, mlp_backward(d, n, d.shared));
  }
  if (cfg.mlp_type != "residual") {
    b.transient = grads + experts_backward;
    return b;
  }
  // residual MoE: its MLP (input copies for fc1 and the coefficient under autocast), the MLP's
  // output and the combined output kept by scale_rows, the coefficients' softmax
  b.saved += 2 * d.lo_copy * n * h + 4 * n * f + d.lo * n * f + 8 * n * h + 8 * n;
  b.transient = grads + std::max(experts_backward, mlp_backward(d, n, f));
  return b;
}

// The output side: the final LayerNorm keeps x and mean/rstd, the output projection its input.
double final_saved(const Dims& d) {
  return 4 * d.n * d.h + 8 * d.n + d.lo * d.n * d.h;
}

struct Activations {
  double peak = 0;
  std::string moment;
  std::vector<MemoryLine> lines;
};

// ZeRO 2's gradients not yet reduced (train/zero_gradients.h), in bytes: at the output
// projection's backward the word embedding's (made there, reduced when the backward ends); in a
// layer's backward also the final LayerNorm's and that layer's own. Zero below stage 2 (the flat
// gradient buffer is persistent).
struct UnreducedGradients {
  double at_output = 0, outside_layers = 0;
  std::vector<double> layer;
};

// The peak of one micro-batch over the moments it can happen (docs/plan.md):
//   the start of the backward: everything the forward kept, the logits, their gradient (under
//     autocast rounded for the projection by the cross-entropy: 16-bit, or f32 where the GEMMs
//     widen 16-bit operands; an f32 one without a teacher and tensor parallelism: over the logits;
//     f32 with a KD term), and with a teacher first its logits and the KD term's f32 gradient;
//   a layer's backward (with checkpointing: a chunk's recompute): the layers below it (their kept
//     inputs), the logits only with a teacher (whose KD term reads them), the layer's activations
//     and its working set.
Activations activations(const TrainConfig& cfg, const Dims& d, const std::vector<int64_t>& experts, RowsCase rows_case,
                        bool teacher, const UnreducedGradients& unreduced) {
  int64_t layers = int64_t(experts.size());
  bool ckpt = cfg.checkpoint_activations || cfg.deepspeed_activation_checkpointing;
  int64_t chunk = ckpt ? std::max<int64_t>(cfg.checkpoint_num_layers, 1) : layers;
  std::vector<LayerBytes> per_layer;
  for (int64_t e : experts) per_layer.push_back(layer_bytes(cfg, d, e, rows_case));
  double logits = 4 * d.n * d.vocab, layer_input = 4 * d.n * d.h;

  // What the forward keeps: every layer's activations, or with checkpointing each chunk's input.
  double kept = 0;
  for (int64_t l = 0; l < layers; ++l) kept += ckpt ? (l % chunk == 0 ? layer_input : 0) : per_layer[size_t(l)].saved;
  double small = 16 * d.n;  // the loss's lse, weights, targets (and the labels)
  double at_output = kept + final_saved(d) + logits + small;
  double grad_lo = d.mixed && !teacher ? d.lo : 4;                   // the logits' gradient
  double dlogits = grad_lo * d.n * d.vocab, dfinal = 4 * d.n * d.h;  // and d(final LN output)
  // Without a teacher the trainer keeps no handle on the logits (nn/gpt.h ForwardMode::loss_grad):
  // they live until the loss's backward, and an f32 gradient of the whole vocabulary is written
  // over them (autograd/ops.h cross_entropy; under autocast rounded, where the GEMMs widen 16-bit
  // operands); a 16-bit or a vocabulary shard's gradient sits beside them until then, and the
  // projection's backward (d(final LN output), ZeRO 2's word embedding gradient) comes after they
  // are gone. With a teacher the logits are kept through the backward.
  bool consumed = !teacher, over_logits = consumed && grad_lo == 4 && d.tp == 1;
  double logits_line = logits, grad_line = dlogits + dfinal, unreduced_line = unreduced.at_output;
  std::string grad_note = "f32 (+ its rounded copy for the GEMMs under autocast), d(final LN output) f32";
  Activations a;
  a.moment = "the output projection's backward (the logits' gradient)";
  if (over_logits) {
    grad_line = dfinal;
    grad_note = d.mixed ? "f32 holding rounded values, written over the logits; d(final LN output) f32"
                        : "f32, written over the logits; d(final LN output) f32";
  } else if (consumed && logits >= dfinal + unreduced.at_output) {
    grad_line = dlogits, unreduced_line = 0;
    a.moment = "the loss (the logits and their gradient)";
    grad_note = grad_lo == 2 ? "16-bit (the cross-entropy writes it rounded)" : "f32";
  } else if (consumed) {
    logits_line = 0;
    grad_note = grad_lo == 2 ? "16-bit, d(final LN output) f32" : "f32, d(final LN output) f32";
  } else if (d.mixed) {
    grad_line += d.lo_copy * d.n * d.vocab;  // the KD-fed f32 gradient's rounded copy for the GEMMs
  }
  double logits_in_layers = consumed ? 0 : logits;  // the logits during the layers' backward
  a.peak = kept + final_saved(d) + small + logits_line + grad_line + unreduced_line;
  a.lines = {{"layers' kept activations", kept,
              ckpt ? "each checkpointed chunk's input [tokens, hidden] f32"
                   : "per layer: LayerNorm inputs, the GEMMs' inputs, attention's qkv/out/lse, MLP or MoE buffers"},
             {"output side", final_saved(d) + small, "final LayerNorm input, the projection's input, loss vectors"},
             {"logits", logits_line,
              over_logits ? "[tokens, padded vocab] f32, then their gradient in the same memory"
              : consumed  ? "[tokens, padded vocab / tp] f32, until the loss's backward"
                          : "[tokens, padded vocab / tp] f32, kept through the backward"},
             {"logits' gradient", grad_line, grad_note}};
  if (unreduced_line > 0)
    a.lines.push_back({"gradients not yet reduced", unreduced_line, "ZeRO 2: the word embedding's (f32)"});
  if (teacher) {  // the KD term's backward: the teacher's logits and an f32 gradient, both [tokens, V]
    double kd = at_output + logits + 4 * d.n * d.vocab;
    if (kd > a.peak) {
      a.peak = kd;
      a.moment = "the KD term's backward (the teacher's logits and an f32 logits gradient)";
      a.lines[3] = {"logits' gradient", 4 * d.n * d.vocab, "f32: the KD term writes it first"};
      a.lines.resize(4);  // (the projection's backward, and so ZeRO 2's word embedding gradient, comes later)
    }
    a.lines.push_back({"teacher's logits", a.moment.find("KD") != std::string::npos ? logits : 0,
                       "f32 [tokens, padded vocab / tp], until the KD term's backward"});
  }
  // A layer's backward: layers [chunk start, l] alive, those below each chunk only as inputs.
  double below = 0;
  for (int64_t start = 0; start < layers; start += chunk) {
    double chunk_kept = 0;
    for (int64_t l = start; l < std::min(start + chunk, layers); ++l) {
      const LayerBytes& b = per_layer[size_t(l)];
      chunk_kept += b.saved;
      double seeds = ckpt ? 3 * layer_input : 0;  // the recompute's output, its seeded gradient
      double grads = unreduced.layer.empty() ? 0.0 : unreduced.outside_layers + unreduced.layer[size_t(l)];
      double at = below + chunk_kept + logits_in_layers + seeds + b.transient + grads;
      if (at > a.peak) {
        a.peak = at;
        a.moment = (ckpt ? "the recompute and backward of layer " : "the backward of layer ") + std::to_string(l);
        a.lines = {
            {"layers' kept activations", below + chunk_kept,
             ckpt ? "the chunk inputs below it, the recomputed chunk's activations" : "the layers up to this one"},
            {"backward working set", seeds + b.transient, "gradients of the residual stream and the MLP"}};
        if (logits_in_layers > 0)
          a.lines.insert(a.lines.begin() + 1, {"logits", logits_in_layers,
                                               "[tokens, padded vocab / tp] f32, kept through the backward (the KD "
                                               "term reads them)"});
        if (grads > 0)
          a.lines.push_back({"gradients not yet reduced", grads,
                             "ZeRO 2: the embeddings', the final LayerNorm's and this layer's (f32)"});
      }
    }
    below += ckpt ? layer_input : chunk_kept;
  }
  return a;
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / std::max<int64_t>(b, 1);
}

// ZeRO 2 from the parameter list: the staging buffer of the largest bucket of several parameters
// (allocated when a group is partitioned) and the gradients held at each moment of the backward.
struct ZeroTwo {
  double staging = 0;
  UnreducedGradients unreduced;
};
ZeroTwo zero_two(const std::vector<ParameterEntry>& list, int64_t layers, int64_t bucket, bool partitioned[2]) {
  ZeroTwo z;
  z.unreduced.layer.assign(size_t(layers), 0.0);
  int64_t largest = 0;
  for (int g = 0; g < 2; ++g) {
    std::vector<int64_t> sizes, layer_of;
    for (const ParameterEntry& p : list)
      if (p.expert == (g == 1)) {
        sizes.push_back(ParameterCounts::padded_parameter_size(p.numel));
        layer_of.push_back(p.layer);
      }
    if (sizes.empty() || !partitioned[g]) continue;  // a whole group is added into its shard in place
    for (IndexRange r : cut_gradient_buckets(sizes, layer_of, bucket)) {
      if (r.last - r.first == 1) continue;  // a single parameter is reduced in its own gradient
      int64_t n = 0;
      for (size_t i = r.first; i < r.last; ++i) n += sizes[i];
      largest = std::max(largest, n);
    }
  }
  z.staging = 4.0 * double(largest);
  z.unreduced.at_output = 4.0 * double(list.front().numel);  // the word embedding (registered first)
  for (size_t i = 0; i < list.size(); ++i) {
    const ParameterEntry& p = list[i];
    if (p.layer >= 0)
      z.unreduced.layer[size_t(p.layer)] += 4.0 * double(p.numel);
    else if (i > 1)  // the final LayerNorm (the position embedding's gradient comes at the very end)
      z.unreduced.outside_layers += 4.0 * double(p.numel);
  }
  z.unreduced.outside_layers += z.unreduced.at_output;
  return z;
}

}  // namespace

PlanDevice plan_device(const TrainConfig& cfg, int64_t ranks_on_node, double memory_gb) {
  PlanDevice d;
  bool gpu = cfg.device == "cuda";
  // a GPU's CUDA context, cuBLAS workspace and NCCL buffers live outside the allocator
  d.reserve_bytes = gpu ? 1.0 * kGB : 0.0;
  if (memory_gb > 0) {
    d.name = "--memory-gb " + std::to_string(int64_t(memory_gb));
    d.bytes = memory_gb * kGB;
    return d;
  }
  if (gpu && cuda_device_count() > 0) {
    d.name = "the GPU";
    d.bytes = double(cuda_device_memory());
    return d;
  }
  d.name = gpu ? "host RAM (no GPU visible here: plan for one with --memory-gb)" : "host RAM";
  d.bytes = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGE_SIZE));
  d.ranks_sharing = gpu ? 1 : std::max<int64_t>(ranks_on_node, 1);
  return d;
}

MemoryPlanOptions plan_options_for(const TrainConfig& cfg, int64_t ranks, int64_t vocab_size) {
  MemoryPlanOptions o;
  o.ranks = ranks;
  o.vocab_size = vocab_size;
  DType c = cfg.compute_dtype();
  // The CPU's GEMMs decide on the CPU and on the host-emulated device (its kernels are the CPU's);
  // cuBLAS takes 16-bit operands as they are
  bool cpu_kernels = cfg.device != "cuda" || cuda_emulated() || emulation_requested_by_environment();
  o.gemm_widens_half = cpu_kernels && ops::gemm_widens(c, Device::cpu());
  return o;
}

MemoryPlan plan_memory(const TrainConfig& cfg, const MemoryPlanOptions& o) {
  MemoryPlan p;
  p.ranks = o.ranks;
  p.tp = std::max<int64_t>(cfg.tensor_model_parallel_size, 1);
  p.dp = std::max<int64_t>(data_parallel_size(cfg, o.ranks), 1);
  p.ep = std::max<int64_t>(cfg.moe_expert_parallel_size, 1);
  p.edp = std::max<int64_t>(p.dp / p.ep, 1);
  p.zero_stage = cfg.zero_stage;
  p.micro_batch = cfg.micro_batch_size;
  p.seq_length = cfg.seq_length;
  p.tokens = cfg.micro_batch_size * cfg.seq_length;
  p.padded_vocab = padded_vocab(o.vocab_size, cfg);
  DType compute = cfg.compute_dtype();
  p.precision = cfg.precision == "auto" ? "auto -> " + std::string(dtype_name(compute)) : cfg.precision;
  p.checkpointing = cfg.checkpoint_activations || cfg.deepspeed_activation_checkpointing;
  p.teacher = cfg.distills() && !cfg.load_teacher.empty();
  p.dropless = cfg.disable_moe_token_dropping;
  p.params = count_rank_parameters(cfg, o.vocab_size, p.tp, p.ep);
  p.model_params = count_parameters(cfg, o.vocab_size);
  bool mixed = compute != DType::F32;

  // --- persistent: the flat buffers (autograd/parameters.h), AdamW (train/optimizer.h), ZeRO's
  // partition (train/zero_shard.h: chunks of ceil(length / group size) elements)
  int64_t flat = p.params.flat();
  int64_t owned = ceil_div(p.params.dense_flat, p.dp) + ceil_div(p.params.expert_flat, p.edp);
  p.weights = 4.0 * double(flat);
  // the weights rounded for the GEMMs: in 16 bits, or in f32 where the GEMMs widen them
  p.half_weights = mixed ? (o.gemm_widens_half ? 4.0 : 2.0) * double(flat) : 0.0;
  p.gradients = 4.0 * double(p.zero_stage >= 2 ? owned : flat);
  p.optimizer = 8.0 * double(p.zero_stage >= 1 ? owned : flat);
  ZeroTwo two;
  if (p.zero_stage >= 2) {  // no flat gradient buffer: gradients per parameter, reduced layer by layer
    bool partitioned[2] = {p.dp > 1, p.edp > 1};
    two = zero_two(rank_parameter_list(cfg, o.vocab_size, p.tp, p.ep), int64_t(cfg.experts_per_layer().size()),
                   cfg.reduce_bucket_size, partitioned);
    p.comm_buffers = two.staging;
  }
  if (p.teacher) {
    p.teacher_params = count_rank_parameters(teacher_config(cfg), o.vocab_size, p.tp, p.ep);
    p.teacher_weights = 4.0 * double(p.teacher_params.flat());
  }

  // --- one micro-batch
  Dims d;
  d.n = double(p.tokens);
  d.h = double(cfg.hidden_size);
  d.f = double(cfg.ffn_size());
  d.fe = double(cfg.moe_ffn_size());
  d.shared = double(cfg.moe_shared_expert_intermediate_size);
  d.heads = double(cfg.num_attention_heads);
  d.vocab = double(p.padded_vocab / p.tp);
  d.tp = double(p.tp);
  d.ep = double(p.ep);
  d.mixed = mixed;
  d.lo = mixed && !o.gemm_widens_half ? 2 : 4;
  d.lo_copy = mixed ? d.lo : 0;
  d.qkv = compute == DType::BF16 ? 2 : 4;
  d.proj_copy = d.lo_copy;
  std::vector<int64_t> experts = cfg.experts_per_layer();
  Activations bound = activations(cfg, d, experts, RowsCase::Bound, p.teacher, two.unreduced);
  p.activations = bound.peak;
  p.peak_moment = bound.moment;
  p.activation_lines = bound.lines;
  if (p.dropless)
    p.dropless_worst_extra = activations(cfg, d, experts, RowsCase::Worst, p.teacher, two.unreduced).peak - bound.peak;

  // --- construction: on the CPU each parameter's initial tensor and the flat buffers pack() moves
  // them into (values and whole gradients; on a GPU the initial tensors stay on the host), then
  // AdamW's state; with a teacher, its initial tensors and flat buffer on top of all that.
  double init = cfg.device == "cuda" ? 0.0 : 4.0 * double(p.params.total());
  double packed = p.weights + (p.zero_stage >= 2 ? 0.0 : 4.0 * double(flat));     // ZeRO 2: no flat gradients
  double after = packed + p.optimizer + (p.zero_stage >= 2 ? p.gradients : 0.0);  // (ZeRO 2: the shards')
  p.construction_peak = std::max(init + packed, after);
  if (p.teacher) {
    double teacher_init = cfg.device == "cuda" ? 0.0 : 4.0 * double(p.teacher_params.total());
    p.construction_peak = std::max(p.construction_peak, after + teacher_init + p.teacher_weights);
  }
  return p;
}

double MemoryPlan::total() const {
  return std::max(persistent() + activations, construction_peak);
}

std::vector<MemoryLine> MemoryPlan::persistent_lines() const {
  auto share = [&](const char* what, int64_t stage) {
    return zero_stage >= stage
               ? std::string(what) + " partitioned by ZeRO " + std::to_string(zero_stage) + " (dense over dp " +
                     std::to_string(dp) + ", experts over edp " + std::to_string(edp) + ")"
               : std::string(what) + " of every parameter on this rank";
  };
  std::vector<MemoryLine> lines = {
      {"weights (f32 master)", weights, "4 bytes x this rank's parameters (flat buffers, 16-element aligned)"},
      {"16-bit weight copy", half_weights,
       half_weights == 0 ? "fp32: none"
       : half_weights >= weights
           ? "4 bytes x parameters: the GEMMs' bf16/fp16-rounded copy, held in f32 (they widen it)"
           : "2 bytes x parameters: the GEMMs' bf16/fp16 copy"},
      {"gradients (f32)", gradients, share("4 bytes", 2)},
      {"AdamW m and v (f32)", optimizer, share("8 bytes", 1)},
  };
  if (teacher) lines.push_back({"teacher weights (f32)", teacher_weights, "frozen: no gradients, no AdamW state"});
  if (comm_buffers > 0)
    lines.push_back({"gradient bucket", comm_buffers,
                     "ZeRO 2: the staging buffer of the largest bucket of several parameters (f32)"});
  return lines;
}

bool plan_fits(const MemoryPlan& plan, const PlanDevice& device) {
  return plan.total() + device.reserve_bytes <= device.per_rank();
}

namespace {

std::string gb(double bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f GB", bytes / kGB);
  return b;
}

std::string row(const std::string& name, double bytes, const std::string& note) {
  char b[320];
  std::snprintf(b, sizeof b, "  %-34s %11s   %s\n", name.c_str(), gb(bytes).c_str(), note.c_str());
  return b;
}

struct Change {
  std::string what;
  std::function<void(TrainConfig&)> apply;
};

// Changes that lower the plan, smallest first; each kept only where `moetrain train` accepts it.
std::vector<Change> candidate_changes(const TrainConfig& cfg, int64_t ranks) {
  std::vector<Change> out;
  int64_t dp = data_parallel_size(cfg, ranks);
  if (dp > 1)
    for (int64_t stage = cfg.zero_stage + 1; stage <= 2; ++stage)
      out.push_back({"--zero-stage " + std::to_string(stage), [stage](TrainConfig& c) { c.zero_stage = stage; }});
  if (cfg.is_moe())
    for (int64_t ep = cfg.moe_expert_parallel_size * 2; ep <= dp; ep *= 2)
      out.push_back({"--moe-expert-parallel-size " + std::to_string(ep),
                     [ep](TrainConfig& c) { c.moe_expert_parallel_size = ep; }});
  if (!cfg.checkpoint_activations && !cfg.deepspeed_activation_checkpointing)
    out.push_back({"--checkpoint-activations", [](TrainConfig& c) { c.checkpoint_activations = true; }});
  for (int64_t mb = cfg.micro_batch_size / 2; mb >= 1; mb /= 2)
    out.push_back({"--micro-batch-size " + std::to_string(mb), [mb](TrainConfig& c) { c.micro_batch_size = mb; }});
  std::vector<Change> accepted;
  for (const Change& ch : out) {
    TrainConfig c = cfg;
    ch.apply(c);
    try {
      validate(c, ranks);
      accepted.push_back(ch);
    } catch (const Error&) {  // a layout this job cannot take, or a stage not supported yet
    }
  }
  return accepted;
}

}  // namespace

std::string does_not_fit_message(const TrainConfig& cfg, const MemoryPlanOptions& options, const PlanDevice& device) {
  MemoryPlan plan = plan_memory(cfg, options);
  if (plan_fits(plan, device)) return "";
  std::string msg = "does not fit: the memory plan needs " + gb(plan.total() + device.reserve_bytes) +
                    " per rank and " + device.name + " gives " + gb(device.per_rank());
  std::vector<Change> changes = candidate_changes(cfg, options.ranks);
  std::vector<std::string> fixes;
  for (const Change& ch : changes) {  // one change alone
    TrainConfig c = cfg;
    ch.apply(c);
    MemoryPlan q = plan_memory(c, options);
    if (plan_fits(q, device)) fixes.push_back(ch.what + " (" + gb(q.total() + device.reserve_bytes) + ")");
  }
  if (fixes.empty()) {  // the changes combined, in order, until the plan fits (each flag at its last value)
    TrainConfig c = cfg;
    std::vector<std::string> flags;  // "--flag value", in the order the flags were first changed
    for (const Change& ch : changes) {
      ch.apply(c);
      std::string flag = ch.what.substr(0, ch.what.find(' '));
      auto same = std::find_if(flags.begin(), flags.end(),
                               [&](const std::string& f) { return f.substr(0, f.find(' ')) == flag; });
      if (same != flags.end())
        *same = ch.what;
      else
        flags.push_back(ch.what);
      MemoryPlan q = plan_memory(c, options);
      if (!plan_fits(q, device)) continue;
      std::string all;
      for (const std::string& f : flags) all += (all.empty() ? "" : " ") + f;
      fixes.push_back(all + " together (" + gb(q.total() + device.reserve_bytes) + ")");
      break;
    }
  }
  if (fixes.empty())
    return msg +
           "; use more ranks (expert and data parallelism over more GPUs), a smaller model or a machine "
           "with more memory (`moetrain plan CONFIG --ranks N --memory-gb X` checks one)";
  msg += "; use ";
  for (size_t i = 0; i < fixes.size(); ++i) msg += (i ? ", or " : "") + fixes[i];
  return msg + " (`moetrain plan` prints the breakdown)";
}

std::string format_memory_plan(const MemoryPlan& p, const PlanDevice& device) {
  char head[512];
  std::snprintf(head, sizeof head,
                "memory plan per rank: %lld ranks = tp %lld x dp %lld, ep %lld (expert-data-parallel %lld), "
                "ZeRO %lld, precision %s\n  micro-batch %lld x seq %lld = %lld tokens, padded vocab %lld, "
                "activation checkpointing %s%s\n  parameters: %.2fM in the model, %.2fM on this rank (%.2fM dense, "
                "%.2fM expert)\n\n",
                (long long)p.ranks, (long long)p.tp, (long long)p.dp, (long long)p.ep, (long long)p.edp,
                (long long)p.zero_stage, p.precision.c_str(), (long long)p.micro_batch, (long long)p.seq_length,
                (long long)p.tokens, (long long)p.padded_vocab, p.checkpointing ? "on" : "off",
                p.teacher ? ", MoS/KD teacher" : "", double(p.model_params) / 1e6, double(p.params.total()) / 1e6,
                double(p.params.dense) / 1e6, double(p.params.expert) / 1e6);
  std::string s = head;
  s += "persistent (between steps)\n";
  for (const MemoryLine& l : p.persistent_lines()) s += row(l.name, l.bytes, l.note);
  s += row("sum", p.persistent(), "");
  s += "\nactivations of one micro-batch (peak at " + p.peak_moment + ")\n";
  for (const MemoryLine& l : p.activation_lines) s += row(l.name, l.bytes, l.note);
  s +=
      row("sum", p.activations, p.dropless ? "MoE rows: kS per rank (dropless, balanced)" : "MoE rows: capacity bound");
  if (p.dropless)
    s += row("dropless worst case adds", p.dropless_worst_extra,
             "every token of the expert group to one rank's experts (not in the total)");
  s += "\n";
  if (p.construction_peak > p.persistent() + p.activations)
    s += row("model construction", p.construction_peak, "initial tensors + flat buffers: above a step's peak");
  s += row("total (allocator peak)", p.total(), "");
  if (device.reserve_bytes > 0)
    s += row("runtime reserve", device.reserve_bytes, "CUDA context, cuBLAS and NCCL buffers (an estimate)");
  std::string avail =
      device.name + (device.ranks_sharing > 1 ? " / " + std::to_string(device.ranks_sharing) + " ranks" : "");
  s += row("available per rank", device.per_rank(), avail);
  return s;
}

}  // namespace mt::train
