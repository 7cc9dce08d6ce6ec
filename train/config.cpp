#include "train/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <variant>

#include "eval/tasks.h"
#include "runtime/cpu/gemm_bf16.h"
#include "runtime/error.h"
#include "runtime/file_util.h"
#include "runtime/text_util.h"
#include "train/config_yaml.h"

namespace mt::train {
namespace {

using Member = std::variant<int64_t TrainConfig::*, double TrainConfig::*, bool TrainConfig::*,
                            std::string TrainConfig::*, std::vector<std::string> TrainConfig::*>;

struct Key {
  const char* name;
  Member member;
  const char* help;
};

// Every key, in the order the effective configuration is printed.
const std::vector<Key>& keys() {
  static const std::vector<Key> table = {
      {"num_layers", &TrainConfig::num_layers, "transformer layers"},
      {"hidden_size", &TrainConfig::hidden_size, "model width"},
      {"num_attention_heads", &TrainConfig::num_attention_heads, "attention heads (must divide hidden_size)"},
      {"ffn_hidden_size", &TrainConfig::ffn_hidden_size, "MLP width; 0 = 4 x hidden_size"},
      {"seq_length", &TrainConfig::seq_length, "tokens per sample"},
      {"max_position_embeddings", &TrainConfig::max_position_embeddings, "learned positions; 0 = seq_length"},
      {"init_method_std", &TrainConfig::init_method_std, "std of the normal initialisation"},
      {"hidden_dropout", &TrainConfig::hidden_dropout, "dropout on embeddings and block outputs"},
      {"attention_dropout", &TrainConfig::attention_dropout, "dropout on attention probabilities"},
      {"layernorm_epsilon", &TrainConfig::layernorm_epsilon, "LayerNorm epsilon"},
      {"make_vocab_size_divisible_by", &TrainConfig::make_vocab_size_divisible_by, "vocabulary padding multiple"},
      {"tensor_model_parallel_size", &TrainConfig::tensor_model_parallel_size, "tensor-parallel ranks"},
      {"micro_batch_size", &TrainConfig::micro_batch_size, "samples per rank per forward"},
      {"global_batch_size", &TrainConfig::global_batch_size,
       "samples per optimizer step; 0 = micro_batch_size x data-parallel size"},
      {"train_iters", &TrainConfig::train_iters, "optimizer steps to train (or train_tokens, train_samples)"},
      {"train_tokens", &TrainConfig::train_tokens,
       "tokens to train; with train_iters, training stops at whichever is reached first"},
      {"exit_duration_in_mins", &TrainConfig::exit_duration_in_mins, "save and stop after this long; 0 = no limit"},
      {"exit_interval", &TrainConfig::exit_interval,
       "save and stop at the first iteration that is a multiple of it; 0 = never"},
      {"distributed_timeout_minutes", &TrainConfig::distributed_timeout_minutes,
       "how long a collective waits for a rank that stopped answering before the job ends naming it"},
      {"seed", &TrainConfig::seed, "seed of initialisation, dropout and data order"},
      {"lr", &TrainConfig::lr, "peak learning rate"},
      {"min_lr", &TrainConfig::min_lr, "learning rate at the end of the decay"},
      {"lr_decay_style", &TrainConfig::lr_decay_style, "constant, linear or cosine"},
      {"lr_decay_iters", &TrainConfig::lr_decay_iters, "decay length in steps; 0 = train_iters"},
      {"lr_decay_tokens", &TrainConfig::lr_decay_tokens, "decay length in tokens (instead of steps)"},
      {"lr_warmup_iters", &TrainConfig::lr_warmup_iters, "linear warmup in steps"},
      {"lr_warmup_tokens", &TrainConfig::lr_warmup_tokens, "linear warmup in tokens (with lr_decay_tokens)"},
      {"lr_warmup_fraction", &TrainConfig::lr_warmup_fraction, "warmup as a fraction of the decay steps"},
      {"weight_decay", &TrainConfig::weight_decay, "AdamW decoupled weight decay (2-D weights only)"},
      {"clip_grad", &TrainConfig::clip_grad, "global gradient-norm clipping; 0 = off"},
      {"adam_beta1", &TrainConfig::adam_beta1, "AdamW beta1"},
      {"adam_beta2", &TrainConfig::adam_beta2, "AdamW beta2"},
      {"adam_eps", &TrainConfig::adam_eps, "AdamW epsilon"},
      {"data_path", &TrainConfig::data_path, "dataset prefix, or weight prefix weight prefix ... to blend"},
      {"split", &TrainConfig::split, "train,valid,test proportions, e.g. 949,50,1"},
      {"vocab_file", &TrainConfig::vocab_file, "GPT-2 encoder.json; empty = the bundled one"},
      {"merge_file", &TrainConfig::merge_file, "GPT-2 vocab.bpe; empty = the bundled one"},
      {"eod_mask_loss", &TrainConfig::eod_mask_loss, "no loss on the token after an end-of-document"},
      {"data_cache_path", &TrainConfig::data_cache_path,
       "folder for the cached sample indices; empty = index-cache/ beside the data"},
      {"save", &TrainConfig::save, "checkpoint folder (also holds metrics.jsonl)"},
      {"load", &TrainConfig::load, "checkpoint folder, or save folder (its latest), to resume from"},
      {"metrics_file", &TrainConfig::metrics_file, "metrics JSON lines; empty = <save>/metrics.jsonl"},
      {"save_interval", &TrainConfig::save_interval, "steps between checkpoints; 0 = only at the end"},
      {"keep_last_n", &TrainConfig::keep_last_n, "checkpoints kept (the newest; never the one latest names); 0 = all"},
      {"supersede_later_checkpoints", &TrainConfig::supersede_later_checkpoints,
       "continue a save folder from this run's start: its later checkpoints move to superseded/"},
      {"log_interval", &TrainConfig::log_interval, "steps between log lines"},
      {"eval_interval", &TrainConfig::eval_interval, "steps between validation runs"},
      {"eval_iters", &TrainConfig::eval_iters, "validation batches per run"},
      {"eval_tasks", &TrainConfig::eval_tasks, "zero-shot tasks to run during training, e.g. [lambada, piqa]"},
      {"eval_tasks_interval", &TrainConfig::eval_tasks_interval,
       "iterations between zero-shot evaluations; 0 = only at the end"},
      {"eval_tasks_limit", &TrainConfig::eval_tasks_limit, "documents per task in training; 0 = all"},
      {"eval_task_data", &TrainConfig::eval_task_data, "folder holding <task>/<file> (docs/eval.md)"},
      {"device", &TrainConfig::device, "cpu, or cuda: each rank trains on one GPU (docs/cuda.md)"},
      {"peak_tflops", &TrainConfig::peak_tflops,
       "one device's peak TFLOP/s for the MFU in the log; 0 = the GPU's known peak (H100/H200/A100), none on CPU"},
      {"precision", &TrainConfig::precision,
       "fp32, bf16, fp16 or auto (bf16 where the CPU or GPU has bf16 matrix units, else fp32): the GEMM operands "
       "(f32 master weights, optimizer and softmaxes; docs/precision.md)"},
      {"loss_scale", &TrainConfig::loss_scale, "fp16: a constant loss scale; 0 = dynamic"},
      {"initial_loss_scale", &TrainConfig::initial_loss_scale, "fp16: the dynamic loss scale to start from"},
      {"min_loss_scale", &TrainConfig::min_loss_scale, "fp16: the dynamic loss scale never goes below this"},
      {"loss_scale_window", &TrainConfig::loss_scale_window,
       "fp16: steps without overflow before the dynamic scale doubles"},
      {"hysteresis", &TrainConfig::hysteresis, "fp16: overflowing steps tolerated before the scale halves"},
      {"fp16", &TrainConfig::fp16, "compat: precision fp16 (Megatron's --fp16)"},
      {"bf16", &TrainConfig::bf16, "compat: precision bf16 (Megatron's --bf16)"},
      {"deepspeed", &TrainConfig::deepspeed, "compat, accepted: moetrain is its own engine (no DeepSpeed needed)"},
      {"deepspeed_config", &TrainConfig::deepspeed_config,
       "a DeepSpeed JSON: batch sizes, clipping, fp16/bf16, ZeRO stage, curriculum (docs/megatron-deepspeed.md)"},
      {"pipeline_model_parallel_size", &TrainConfig::pipeline_model_parallel_size,
       "compat: 1 (pipeline parallelism is not supported)"},
      {"no_pipeline_parallel", &TrainConfig::no_pipeline_parallel, "compat, accepted: the model is never a pipeline"},
      {"create_moe_param_group", &TrainConfig::create_moe_param_group,
       "compat, accepted: expert parameters always form their own group"},
      {"num_workers", &TrainConfig::num_workers, "compat, accepted: samples are read in the training thread"},
      {"data_impl", &TrainConfig::data_impl, "compat: mmap (or infer): Megatron's mmap .bin/.idx"},
      {"override_opt_param_scheduler", &TrainConfig::override_opt_param_scheduler,
       "on resume, take the LR schedule from the flags even where the checkpoint's differs"},
      {"use_checkpoint_opt_param_scheduler", &TrainConfig::use_checkpoint_opt_param_scheduler,
       "on resume, take the LR schedule from the checkpoint even where the flags differ"},
      {"no_load_optim", &TrainConfig::no_load_optim, "on resume, start AdamW afresh (load the weights and counters)"},
      {"no_load_rng", &TrainConfig::no_load_rng,
       "compat, accepted: there is no RNG state (every random number is keyed by seed and sample)"},
      {"finetune", &TrainConfig::finetune, "load the weights only: iteration 0, AdamW afresh, the data from its start"},
      {"train_samples", &TrainConfig::train_samples,
       "samples to train: train_iters = train_samples / global_batch_size (instead of train_iters)"},
      {"zero_stage", &TrainConfig::zero_stage,
       "ZeRO stage: 0, 1 (AdamW's moments partitioned over the data-parallel ranks) or 2 (the gradients too, "
       "reduced into the shards during the backward); docs/zero.md"},
      {"allgather_bucket_size", &TrainConfig::allgather_bucket_size,
       "ZeRO: elements of the updated weights all-gathered at a time (DeepSpeed's zero_optimization key; 5e8)"},
      {"reduce_bucket_size", &TrainConfig::reduce_bucket_size,
       "ZeRO 2: elements of gradients reduced at a time during the backward (DeepSpeed's zero_optimization key; 5e8)"},
      {"prescale_gradients", &TrainConfig::prescale_gradients,
       "DeepSpeed JSON, accepted: gradients are averaged over the ranks either way"},
      {"wall_clock_breakdown", &TrainConfig::wall_clock_breakdown,
       "the step's phase times (forward-backward, gradient reduction, optimizer) in the log"},
      {"steps_per_print", &TrainConfig::steps_per_print, "DeepSpeed JSON, accepted: the log follows log_interval"},
      {"curriculum_learning", &TrainConfig::curriculum_learning,
       "sequence-length curriculum (DeepSpeed's seqlen, fixed_linear)"},
      {"curriculum_min_difficulty", &TrainConfig::curriculum_min_difficulty, "curriculum: first sequence length"},
      {"curriculum_max_difficulty", &TrainConfig::curriculum_max_difficulty, "curriculum: last sequence length"},
      {"curriculum_total_step", &TrainConfig::curriculum_total_step,
       "curriculum: iterations to reach the last sequence length"},
      {"curriculum_difficulty_step", &TrainConfig::curriculum_difficulty_step,
       "curriculum: sequence lengths are multiples of this"},
      {"checkpoint_activations", &TrainConfig::checkpoint_activations,
       "recompute each layer's activations in the backward (keeps only layer inputs; same gradients)"},
      {"deepspeed_activation_checkpointing", &TrainConfig::deepspeed_activation_checkpointing,
       "DeepSpeed's switch for the same recomputation (either one turns it on)"},
      {"checkpoint_num_layers", &TrainConfig::checkpoint_num_layers,
       "transformer layers per recomputed chunk (checkpoint_activations)"},
      {"tensorboard_dir", &TrainConfig::tensorboard_dir, "write TensorBoard event files here; empty = none"},
      {"tensorboard_queue_size", &TrainConfig::tensorboard_queue_size,
       "TensorBoard events buffered before they are written to the file"},
      {"log_timers_to_tensorboard", &TrainConfig::log_timers_to_tensorboard,
       "TensorBoard: the iteration time and the step's phase timers"},
      {"log_batch_size_to_tensorboard", &TrainConfig::log_batch_size_to_tensorboard, "TensorBoard: the batch size"},
      {"log_validation_ppl_to_tensorboard", &TrainConfig::log_validation_ppl_to_tensorboard,
       "TensorBoard: the validation perplexity beside the validation loss"},
      {"log_optimizer_states_to_tensorboard", &TrainConfig::log_optimizer_states_to_tensorboard,
       "TensorBoard: norms of AdamW's moments and of the weights"},
      {"num_experts", &TrainConfig::num_experts,
       "experts per MoE layer: one count, or one per MoE layer (pyramid); 1 = dense"},
      {"expert_interval", &TrainConfig::expert_interval, "layer l (1-based) is MoE when l % expert_interval == 0"},
      {"topk", &TrainConfig::topk, "experts per token (1: Switch, 2: GShard, k >= 3: generic)"},
      {"moe_train_capacity_factor", &TrainConfig::moe_train_capacity_factor, "capacity factor in training"},
      {"moe_eval_capacity_factor", &TrainConfig::moe_eval_capacity_factor, "capacity factor in evaluation"},
      {"moe_min_capacity", &TrainConfig::moe_min_capacity, "minimum tokens per expert"},
      {"disable_moe_token_dropping", &TrainConfig::disable_moe_token_dropping, "no capacity limit (dropless)"},
      {"disable_moe_top2_2nd_expert_sampling", &TrainConfig::disable_moe_top2_2nd_expert_sampling,
       "top-2: take the second expert by argmax instead of sampling it"},
      {"moe_loss_coeff", &TrainConfig::moe_loss_coeff, "weight of the summed load-balancing losses"},
      {"moe_aux_loss_coeff", &TrainConfig::moe_loss_coeff, "the same as moe_loss_coeff (Megatron-Core's name)"},
      {"moe_router_enable_expert_bias", &TrainConfig::moe_router_enable_expert_bias,
       "auxiliary-loss-free balancing (DeepSeek-V3): a per-expert bias added to the scores for the choice only, "
       "updated after every step by the sign of (mean load - the expert's load) over the global batch"},
      {"moe_router_bias_update_rate", &TrainConfig::moe_router_bias_update_rate,
       "the expert bias's step per iteration (moe_router_enable_expert_bias)"},
      {"moe_router_pre_softmax", &TrainConfig::moe_router_pre_softmax,
       "combine weights: the top-k of the softmax as they are (not renormalised over the chosen experts, as "
       "DeepSpeed's top-2 / top-k do by default)"},
      {"moe_router_topk_scaling_factor", &TrainConfig::moe_router_topk_scaling_factor,
       "the combine weights times this factor (DeepSeek-V3: 2.5); 1 = as they are"},
      {"moe_ffn_hidden_size", &TrainConfig::moe_ffn_hidden_size,
       "an expert's MLP width (fine-grained experts: many small ones at top-k 4-8); 0 = ffn_hidden_size"},
      {"moe_shared_expert_intermediate_size", &TrainConfig::moe_shared_expert_intermediate_size,
       "a shared expert (DeepSeek-MoE): an always-on MLP of this width added to every MoE layer's routed output; "
       "0 = none"},
      {"moe_router_diagnostics", &TrainConfig::moe_router_diagnostics,
       "per MoE layer, the gate weight's gradient split by loss term (LM, balancing, z-loss: norms) and the cosine "
       "between the LM and the balancing term (interference), in the log and metrics; a host pass per step. And "
       "at each log step the drop cost: the LM loss change per dropped token had a sample of them gone through "
       "their experts (one forward without gradient per MoE layer and micro-batch)"},
      {"moe_router_drop_cost_samples", &TrainConfig::moe_router_drop_cost_samples,
       "the drop cost's sample: dropped tokens per MoE layer and micro-batch re-run through their chosen experts "
       "(moe_router_diagnostics); 0 = no drop cost"},
      {"moe_use_upcycling", &TrainConfig::moe_use_upcycling,
       "sparse upcycling: `load` is a dense checkpoint; every expert starts as a copy of its layer's dense MLP, "
       "AdamW and the counters afresh (moetrain upcycle writes such a checkpoint ahead)"},
      {"moe_router_score_function", &TrainConfig::moe_router_score_function,
       "the router's scores: softmax (over the experts) or sigmoid (per expert, DeepSeek-V3; the plain top-k, "
       "weights renormalised for topk >= 2)"},
      {"moe_router_num_groups", &TrainConfig::moe_router_num_groups,
       "group-limited routing (DeepSeek-V3): the experts form this many contiguous groups; 0 = off"},
      {"moe_router_group_topk", &TrainConfig::moe_router_group_topk,
       "group-limited routing: each token chooses its experts inside its best this-many groups"},
      {"moe_router_load_balancing_type", &TrainConfig::moe_router_load_balancing_type,
       "the balancing loss: aux_loss (DeepSpeed's, per micro-batch), seq_aux_loss (per sequence, DeepSeek-V2/V3), "
       "global_aux_loss (the fractions of the whole global batch: one forward without gradient more per "
       "micro-batch when it holds several) or none"},
      {"moe_z_loss_coeff", &TrainConfig::moe_z_loss_coeff,
       "weight of the router z-loss (ST-MoE: mean over tokens of logsumexp(gate logits)^2, per MoE layer); 0 = off"},
      {"mlp_type", &TrainConfig::mlp_type, "standard or residual (residual MoE, as PR-MoE)"},
      {"noisy_gate_policy", &TrainConfig::noisy_gate_policy, "None, Jitter or RSample (top-1) gate noise in training"},
      {"use_rts", &TrainConfig::use_rts, "over capacity, keep a random subset of tokens (else the first in order)"},
      {"moe_expert_parallel_size", &TrainConfig::moe_expert_parallel_size,
       "ranks that share one copy of the experts (each holds num_experts / this many)"},
      {"mos", &TrainConfig::mos, "Mixture-of-Students: distil from the MoE teacher of load_teacher"},
      {"kd", &TrainConfig::kd, "knowledge distillation from the teacher of load_teacher (any models)"},
      {"load_teacher", &TrainConfig::load_teacher, "the teacher's checkpoint (save folder or checkpoint folder)"},
      {"num_layers_teacher", &TrainConfig::num_layers_teacher, "teacher layers; 0 = num_layers"},
      {"hidden_size_teacher", &TrainConfig::hidden_size_teacher, "teacher width; 0 = hidden_size"},
      {"num_attention_heads_teacher", &TrainConfig::num_attention_heads_teacher,
       "teacher attention heads; 0 = num_attention_heads"},
      {"ffn_hidden_size_teacher", &TrainConfig::ffn_hidden_size_teacher, "teacher MLP width; 0 = 4 x its hidden size"},
      {"num_experts_teacher", &TrainConfig::num_experts_teacher,
       "teacher experts per MoE layer: one count, or one per MoE layer"},
      {"mlp_type_teacher", &TrainConfig::mlp_type_teacher, "teacher's standard or residual; empty = mlp_type"},
      {"kd_temp", &TrainConfig::kd_temp, "distillation temperature T"},
      {"kd_beta_ce", &TrainConfig::kd_beta_ce, "weight beta of the KD term (beta T^2 KL)"},
      {"kd_alpha_ce", &TrainConfig::kd_alpha_ce, "accepted for Megatron-DeepSpeed scripts; unused there and here"},
      {"kd_stop_step", &TrainConfig::kd_stop_step,
       "iteration from which the KD term is off and the teacher freed (staged KD); 0 = never"},
      {"kd_loss_mask", &TrainConfig::kd_loss_mask, "apply the LM loss mask to the KD term too (DeepSpeed: no)"},
      {"student_init_from_teacher_layers", &TrainConfig::student_init_from_teacher_layers,
       "teacher layer (0-based) to copy into each student layer at the start; empty = random init"},
  };
  return table;
}

const Key* find_key(const std::string& name) {
  for (const Key& k : keys())
    if (name == k.name) return &k;
  return nullptr;
}

[[noreturn]] void unknown_key(const std::string& name, const std::string& where, bool flag) {
  std::string key = name;
  std::replace(key.begin(), key.end(), '-', '_');
  std::string best = closest_name(key, config_keys());
  if (flag) std::replace(best.begin(), best.end(), '_', '-');
  throw Error(where + ": unknown " + (flag ? "option '--" : "key '") + name + "'; did you mean '" + (flag ? "--" : "") +
              best + "'? (`moetrain train --help` lists them all)");
}

int64_t parse_int(const std::string& text, const std::string& key, const std::string& where) {
  try {
    size_t used = 0;
    double v = std::stod(text, &used);  // accepts 300e9, as Megatron users write token counts
    if (used == text.size() && std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9.2e18) return int64_t(v);
  } catch (const std::exception&) {
  }
  throw Error(where + ": " + key + " expects an integer, got '" + text + "'");
}

double parse_float(const std::string& text, const std::string& key, const std::string& where) {
  try {
    size_t used = 0;
    double v = std::stod(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  throw Error(where + ": " + key + " expects a number, got '" + text + "'");
}

bool parse_bool(const std::string& text, const std::string& key, const std::string& where) {
  if (text == "true" || text == "True" || text == "yes" || text == "1") return true;
  if (text == "false" || text == "False" || text == "no" || text == "0") return false;
  throw Error(where + ": " + key + " expects true or false, got '" + text + "'");
}

// What setting key `k` implies: Megatron's --fp16 / --bf16 are switches for the precision.
void after_set(TrainConfig& cfg, const Key& k) {
  if (cfg.fp16 && std::string(k.name) == "fp16") cfg.precision = "fp16";
  if (cfg.bf16 && std::string(k.name) == "bf16") cfg.precision = "bf16";
}

// Sets a scalar key from text.
void set_scalar(TrainConfig& cfg, const Key& k, const std::string& text, const std::string& where) {
  std::visit(
      [&](auto member) {
        using T = std::remove_cvref_t<decltype(cfg.*member)>;
        if constexpr (std::is_same_v<T, int64_t>)
          cfg.*member = parse_int(text, k.name, where);
        else if constexpr (std::is_same_v<T, double>)
          cfg.*member = parse_float(text, k.name, where);
        else if constexpr (std::is_same_v<T, bool>)
          cfg.*member = parse_bool(text, k.name, where);
        else if constexpr (std::is_same_v<T, std::string>)
          cfg.*member = text;
        else
          cfg.*member = {text};
      },
      k.member);
  after_set(cfg, k);
}

bool is_list(const Key& k) {
  return std::holds_alternative<std::vector<std::string> TrainConfig::*>(k.member);
}
bool is_bool(const Key& k) {
  return std::holds_alternative<bool TrainConfig::*>(k.member);
}

}  // namespace

std::vector<std::string> config_keys() {
  std::vector<std::string> names;
  for (const Key& k : keys()) names.push_back(k.name);
  return names;
}

std::string config_help(const std::string& key) {
  const Key* k = find_key(key);
  return k ? k->help : "";
}

void apply_yaml_value(TrainConfig& cfg, const std::string& name, const YAML::Node& v, const std::string& where) {
  const Key* k = find_key(name);
  if (!k) unknown_key(name, where, false);
  if (is_list(*k)) {
    std::vector<std::string> items;
    if (v.IsSequence()) {
      for (const auto& item : v) {
        MT_CHECK(item.IsScalar(), where, ": ", name, " expects a list of plain values");
        items.push_back(item.as<std::string>());
      }
    } else if (v.IsScalar()) {
      std::istringstream words(v.as<std::string>());  // "0.3 a 0.7 b" as Megatron's command line
      for (std::string w; words >> w;) items.push_back(w);
    } else {
      throw Error(where + ": " + name + " expects a list");
    }
    cfg.*std::get<std::vector<std::string> TrainConfig::*>(k->member) = items;
    return;
  }
  MT_CHECK(v.IsScalar(), where, ": ", name, " expects a single value, got ",
           v.IsSequence() ? "a list"
           : v.IsMap()    ? "a mapping"
                          : "nothing");
  set_scalar(cfg, *k, v.as<std::string>(), where);
}

namespace {
// Throws when a mapping, at any depth, names one key twice.
void check_unique_keys(const YAML::Node& node, const std::string& path) {
  if (node.IsMap()) {
    std::map<std::string, int> first_line;
    for (const auto& entry : node) {
      if (entry.first.IsScalar()) {
        int line = entry.first.Mark().line + 1;
        auto [it, fresh] = first_line.emplace(entry.first.Scalar(), line);
        MT_CHECK(fresh, path, ":", line, ": key '", entry.first.Scalar(), "' is given twice (lines ", it->second,
                 " and ", line, "); keep one of them");
      }
      check_unique_keys(entry.second, path);
    }
  } else if (node.IsSequence()) {
    for (const auto& item : node) check_unique_keys(item, path);
  }
}
}  // namespace

YAML::Node load_yaml_file(const std::string& path, const std::string& what) {
  std::string text = read_file(path, what);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error(path + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML: " + e.msg);
  }
  check_unique_keys(root, path);
  return root;
}

TrainConfig load_config_file(const std::string& path, TrainConfig cfg) {
  YAML::Node root = load_yaml_file(path, "config file");
  MT_CHECK(!root.IsNull(), "config file '", path,
           "' is empty: write one `key: value` per line (configs/tiny-dense.yaml is an example; `moetrain train "
           "--help` lists the keys)");
  MT_CHECK(root.IsMap(), path, ": a config file is a mapping of keys to values (key: value per line)");
  for (const auto& entry : root) {
    std::string name = entry.first.as<std::string>();
    apply_yaml_value(cfg, name, entry.second, path + ":" + std::to_string(entry.first.Mark().line + 1));
  }
  return cfg;
}

std::vector<std::string> apply_overrides(TrainConfig& cfg, const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name, value;
    bool has_value = split_flag(args[i], name, value);
    if (name.empty()) {
      positional.push_back(args[i]);
      continue;
    }
    std::string spelled = name;
    std::replace(name.begin(), name.end(), '-', '_');
    const Key* k = find_key(name);
    std::string where = "command line";
    if (!k) unknown_key(spelled, where, true);
    auto next_is_value = [&] { return i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0; };
    if (is_list(*k)) {
      std::vector<std::string> items;
      if (has_value) items.push_back(value);
      while (next_is_value()) items.push_back(args[++i]);
      MT_CHECK(!items.empty(), where, ": --", name, " needs at least one value");
      cfg.*std::get<std::vector<std::string> TrainConfig::*>(k->member) = items;
    } else if (is_bool(*k) && !has_value && !(next_is_value() && (args[i + 1] == "true" || args[i + 1] == "false"))) {
      cfg.*std::get<bool TrainConfig::*>(k->member) = true;  // a bare flag, as Megatron's store_true
      after_set(cfg, *k);
    } else {
      if (!has_value) {
        MT_CHECK(next_is_value(), where, ": --", name, " needs a value");
        value = args[++i];
      }
      set_scalar(cfg, *k, value, where + " --" + name);
    }
  }
  return positional;
}

std::vector<int64_t> TrainConfig::experts_per_layer() const {
  MT_CHECK(expert_interval > 0, "expert_interval must be positive, got ", expert_interval);
  std::vector<int64_t> counts;
  for (const std::string& s : num_experts) counts.push_back(parse_int(s, "num_experts", "num_experts"));
  MT_CHECK(!counts.empty(), "num_experts needs at least one value");
  std::vector<int64_t> moe_layers;  // 1-based
  for (int64_t l = 1; l <= num_layers; ++l)
    if (l % expert_interval == 0) moe_layers.push_back(l);
  std::vector<int64_t> out(size_t(num_layers), 1);
  if (counts.size() == 1) {
    for (int64_t l : moe_layers) out[size_t(l - 1)] = counts[0];
    return out;
  }
  if (counts.size() != moe_layers.size()) {
    std::string which;
    for (int64_t l : moe_layers) which += (which.empty() ? "" : ", ") + std::to_string(l);
    throw Error("num_experts has " + std::to_string(counts.size()) + " entries but the model has " +
                std::to_string(moe_layers.size()) + " MoE layers (num_layers " + std::to_string(num_layers) +
                ", expert_interval " + std::to_string(expert_interval) + ": layers " + which +
                "); give one count, or one per MoE layer");
  }
  for (size_t i = 0; i < moe_layers.size(); ++i) out[size_t(moe_layers[i] - 1)] = counts[i];
  return out;
}

bool TrainConfig::is_moe() const {
  for (int64_t e : experts_per_layer())
    if (e > 1) return true;
  return false;
}

DType TrainConfig::compute_dtype() const {
  if (precision == "bf16") return DType::BF16;
  // auto: bf16 where the device multiplies bf16 at a higher rate than f32 (a GPU's tensor cores;
  // a CPU's AMX or AVX512-BF16 units, found at run time: runtime/cpu/gemm_bf16.h), else fp32
  if (precision == "auto")
    return device == "cuda" || cpu::bf16_gemm_path() == cpu::Bf16GemmPath::OneDnn ? DType::BF16 : DType::F32;
  if (precision == "fp16") return DType::F16;
  return DType::F32;
}

TrainConfig teacher_config(const TrainConfig& s) {
  TrainConfig t = s;
  if (s.num_layers_teacher > 0) t.num_layers = s.num_layers_teacher;
  if (s.hidden_size_teacher > 0) t.hidden_size = s.hidden_size_teacher;
  if (s.num_attention_heads_teacher > 0) t.num_attention_heads = s.num_attention_heads_teacher;
  t.ffn_hidden_size = s.ffn_hidden_size_teacher;
  t.num_experts = s.num_experts_teacher;
  if (!s.mlp_type_teacher.empty()) t.mlp_type = s.mlp_type_teacher;
  t.mos = t.kd = false;
  t.load = s.load_teacher;
  t.student_init_from_teacher_layers.clear();
  return t;
}

namespace {
// The distillation keys: a teacher to load, sensible KD numbers, a teacher that fits the layout.
void validate_distillation(const TrainConfig& c, int64_t ranks) {
  MT_CHECK(!c.load_teacher.empty(), c.mos ? "mos" : "kd",
           " needs load_teacher: the teacher's checkpoint (train the teacher first, e.g. configs/tiny-pr-moe.yaml)");
  MT_CHECK(c.kd_temp > 0 && c.kd_beta_ce >= 0 && c.kd_stop_step >= 0,
           "need kd_temp > 0, kd_beta_ce >= 0 and kd_stop_step >= 0 (got ", c.kd_temp, ", ", c.kd_beta_ce, ", ",
           c.kd_stop_step, ")");
  TrainConfig t = teacher_config(c);
  try {
    validate(t, ranks);
  } catch (const Error& e) {
    throw Error(std::string("the teacher (the *_teacher keys): ") + e.what());
  }
  if (!c.student_init_from_teacher_layers.empty()) {
    MT_CHECK(int64_t(c.student_init_from_teacher_layers.size()) == c.num_layers, "student_init_from_teacher_layers ",
             "names ", c.student_init_from_teacher_layers.size(), " teacher layers; give one per student layer (",
             c.num_layers, ")");
    for (const std::string& v : c.student_init_from_teacher_layers) {
      char* end = nullptr;
      long long l = std::strtoll(v.c_str(), &end, 10);
      MT_CHECK(!v.empty() && *end == 0 && l >= 0 && l < t.num_layers, "student_init_from_teacher_layers: '", v,
               "' is not a teacher layer (0 to ", t.num_layers - 1, ")");
    }
  }
}
}  // namespace

void validate(const TrainConfig& c, int64_t ranks) {
  auto positive = [](int64_t v, const char* key) { MT_CHECK(v > 0, key, " must be positive, got ", v); };
  positive(c.num_layers, "num_layers");
  positive(c.hidden_size, "hidden_size");
  positive(c.num_attention_heads, "num_attention_heads");
  positive(c.seq_length, "seq_length");
  positive(c.tensor_model_parallel_size, "tensor_model_parallel_size");
  MT_CHECK(c.hidden_size % c.num_attention_heads == 0, "num_attention_heads (", c.num_attention_heads,
           ") must divide hidden_size (", c.hidden_size, ")");
  MT_CHECK(c.seq_length <= c.max_positions(), "seq_length (", c.seq_length,
           ") is larger than max_position_embeddings (", c.max_position_embeddings,
           "): the model has no position for the later tokens");
  MT_CHECK(ranks % c.tensor_model_parallel_size == 0, "tensor_model_parallel_size (", c.tensor_model_parallel_size,
           ") must divide the ", ranks, " ranks (tensor x data parallel = ranks; start a multiple of ",
           c.tensor_model_parallel_size, " ranks with mpirun -np)");
  int64_t dp_size = data_parallel_size(c, ranks);
  MT_CHECK(c.micro_batch_size > 0, "micro_batch_size must be set (a positive number of samples per forward)");
  int64_t step = c.micro_batch_size * dp_size;
  MT_CHECK(c.global_batch_size == 0 || (c.global_batch_size > 0 && c.global_batch_size % step == 0),
           "global_batch_size (", c.global_batch_size, ") must be a multiple of micro_batch_size (", c.micro_batch_size,
           ") x data-parallel size (", dp_size, ") = ", step);
  MT_CHECK(c.train_iters > 0 || c.train_tokens > 0 || c.train_samples > 0,
           "set how long to train: train_iters, train_tokens or train_samples");
  MT_CHECK(c.train_samples == 0 || c.train_iters == 0, "set train_samples or train_iters, not both (got ",
           c.train_samples, " samples and ", c.train_iters, " iterations)");
  MT_CHECK(c.train_iters >= 0 && c.train_tokens >= 0 && c.train_samples >= 0,
           "train_iters, train_tokens and train_samples must not be negative");
  MT_CHECK(!(c.fp16 && c.bf16), "set fp16 or bf16, not both");
  MT_CHECK(!c.fp16 || c.precision == "fp16", "fp16 is set but precision is ", c.precision, "; keep one of them");
  MT_CHECK(!c.bf16 || c.precision == "bf16", "bf16 is set but precision is ", c.precision, "; keep one of them");
  MT_CHECK(c.pipeline_model_parallel_size == 1, "pipeline_model_parallel_size ", c.pipeline_model_parallel_size,
           ": pipeline parallelism is not supported; use 1 (or --no-pipeline-parallel) and spread the model with ",
           "tensor and expert parallelism");
  MT_CHECK(c.data_impl == "mmap" || c.data_impl == "infer", "data_impl '", c.data_impl,
           "' is not supported: moetrain reads Megatron's mmap datasets (.bin/.idx); use mmap");
  MT_CHECK(c.allgather_bucket_size > 0, "allgather_bucket_size must be positive (elements), got ",
           c.allgather_bucket_size);
  MT_CHECK(c.reduce_bucket_size > 0, "reduce_bucket_size must be positive (elements), got ", c.reduce_bucket_size);
  MT_CHECK(c.zero_stage >= 0 && c.zero_stage <= 2, "zero_stage ", c.zero_stage,
           c.zero_stage == 3 ? ": ZeRO stage 3 (the parameters partitioned too) is not supported; " : ": ",
           "use 2 (AdamW's state and the gradients partitioned over the data-parallel ranks, docs/zero.md), ",
           "1 (AdamW's state only) or 0 (every data-parallel rank keeps everything)");
  MT_CHECK(!(c.override_opt_param_scheduler && c.use_checkpoint_opt_param_scheduler),
           "set override_opt_param_scheduler or use_checkpoint_opt_param_scheduler, not both");
  MT_CHECK(c.num_workers >= 0 && c.steps_per_print >= 0, "num_workers and steps_per_print must not be negative");
  if (c.curriculum_learning)
    MT_CHECK(c.curriculum_min_difficulty > 0 && c.curriculum_min_difficulty <= c.curriculum_max_difficulty &&
                 c.curriculum_max_difficulty <= c.seq_length && c.curriculum_total_step > 0 &&
                 c.curriculum_difficulty_step > 0,
             "curriculum learning needs 0 < min_difficulty (", c.curriculum_min_difficulty, ") <= max_difficulty (",
             c.curriculum_max_difficulty, ") <= seq_length (", c.seq_length, "), total_curriculum_step (",
             c.curriculum_total_step, ") > 0 and difficulty_step (", c.curriculum_difficulty_step, ") > 0");
  MT_CHECK(c.lr > 0 && c.min_lr >= 0 && c.min_lr <= c.lr, "need 0 <= min_lr (", c.min_lr, ") <= lr (", c.lr, ")");
  MT_CHECK(c.lr_decay_style == "constant" || c.lr_decay_style == "linear" || c.lr_decay_style == "cosine",
           "lr_decay_style must be constant, linear or cosine, got '", c.lr_decay_style, "'");
  MT_CHECK(!(c.lr_warmup_tokens > 0 && c.lr_warmup_iters > 0), "set lr_warmup_tokens or lr_warmup_iters, not both");
  MT_CHECK(!(c.lr_warmup_fraction > 0 && (c.lr_warmup_iters > 0 || c.lr_warmup_tokens > 0)),
           "set lr_warmup_fraction or a warmup length, not both");
  MT_CHECK(c.lr_warmup_tokens == 0 || c.lr_decay_tokens > 0,
           "lr_warmup_tokens needs lr_decay_tokens (the token-based schedule)");
  MT_CHECK(c.lr_warmup_fraction >= 0 && c.lr_warmup_fraction <= 1, "lr_warmup_fraction must be in [0, 1]");
  MT_CHECK(c.hidden_dropout >= 0 && c.hidden_dropout < 1 && c.attention_dropout >= 0 && c.attention_dropout < 1,
           "hidden_dropout and attention_dropout must be in [0, 1)");
  MT_CHECK(c.adam_beta1 >= 0 && c.adam_beta1 < 1 && c.adam_beta2 >= 0 && c.adam_beta2 < 1 && c.adam_eps > 0,
           "need adam_beta1 and adam_beta2 in [0, 1) and adam_eps > 0");
  MT_CHECK(c.exit_interval >= 0 && c.exit_duration_in_mins >= 0,
           "exit_interval and exit_duration_in_mins must not be negative");
  MT_CHECK(c.distributed_timeout_minutes > 0, "distributed_timeout_minutes must be positive (minutes, e.g. 10 or ",
           "0.5), got ", c.distributed_timeout_minutes);
  MT_CHECK(c.peak_tflops >= 0, "peak_tflops must not be negative");
  MT_CHECK(c.weight_decay >= 0 && c.clip_grad >= 0, "weight_decay and clip_grad must not be negative");
  int64_t tp = c.tensor_model_parallel_size;
  MT_CHECK(c.num_attention_heads % tp == 0 && c.ffn_size() % tp == 0 && c.make_vocab_size_divisible_by % tp == 0,
           "tensor_model_parallel_size (", tp, ") must divide num_attention_heads (", c.num_attention_heads,
           "), the MLP width (", c.ffn_size(), ") and make_vocab_size_divisible_by (", c.make_vocab_size_divisible_by,
           ")");
  MT_CHECK(c.device == "cpu" || c.device == "cuda", "device must be cpu or cuda, got '", c.device, "'");
  MT_CHECK(c.precision == "fp32" || c.precision == "bf16" || c.precision == "fp16" || c.precision == "auto",
           "precision must be fp32, bf16, fp16 or auto, got '", c.precision, "'");
  MT_CHECK(c.loss_scale >= 0 && c.initial_loss_scale > 0 && c.min_loss_scale > 0 && c.loss_scale_window >= 1 &&
               c.hysteresis >= 1,
           "loss scaling: need loss_scale >= 0, initial_loss_scale > 0, min_loss_scale > 0, loss_scale_window >= 1 ",
           "and hysteresis >= 1");
  MT_CHECK(c.precision != "fp16" || c.loss_scale > 0 || c.initial_loss_scale >= c.min_loss_scale,
           "initial_loss_scale (", c.initial_loss_scale, ") is below min_loss_scale (", c.min_loss_scale,
           "): the dynamic fp16 loss scale starts at initial_loss_scale and never goes below min_loss_scale; raise ",
           "initial_loss_scale (default 2^32) or lower min_loss_scale (default 1)");
  MT_CHECK(!c.data_path.empty(), "data_path must name a dataset prefix (make one with `moetrain preprocess`)");
  std::vector<int64_t> experts = c.experts_per_layer();
  int64_t ep = c.moe_expert_parallel_size;
  MT_CHECK(ep >= 1 && dp_size % ep == 0, "moe_expert_parallel_size (", ep, ") must divide the ", dp_size,
           " data-parallel ranks (start a multiple of ", ep, " ranks with mpirun -np, or lower it)");
  for (int64_t e : experts) {
    MT_CHECK(e >= 1, "num_experts entries must be at least 1, got ", e);
    MT_CHECK(e == 1 || e % ep == 0, "num_experts: a layer with ", e, " experts cannot be spread over ",
             "moe_expert_parallel_size ", ep, " ranks; every MoE layer's count must be a multiple of it");
    MT_CHECK(e == 1 || (c.topk >= 1 && c.topk <= e), "topk (", c.topk,
             ") must be between 1 and the experts of a layer (", e, ")");
  }
  MT_CHECK(c.mlp_type == "standard" || c.mlp_type == "residual", "mlp_type must be standard or residual, got '",
           c.mlp_type, "'");
  MT_CHECK(c.noisy_gate_policy == "None" || c.noisy_gate_policy == "Jitter" ||
               (c.noisy_gate_policy == "RSample" && c.topk == 1),
           "noisy_gate_policy must be None, Jitter or RSample (RSample needs topk 1), got '", c.noisy_gate_policy,
           "' with topk ", c.topk);
  MT_CHECK(c.moe_train_capacity_factor > 0 && c.moe_eval_capacity_factor > 0 && c.moe_min_capacity >= 0 &&
               c.moe_loss_coeff >= 0 && c.moe_z_loss_coeff >= 0,
           "MoE capacity factors must be positive, moe_min_capacity, moe_loss_coeff and moe_z_loss_coeff not negative");
  const std::string& balancing = c.moe_router_load_balancing_type;
  MT_CHECK(
      balancing == "aux_loss" || balancing == "seq_aux_loss" || balancing == "global_aux_loss" || balancing == "none",
      "moe_router_load_balancing_type must be aux_loss, seq_aux_loss, global_aux_loss or none, got '", balancing, "'");
  MT_CHECK(!c.moe_router_enable_expert_bias || c.noisy_gate_policy != "RSample",
           "moe_router_enable_expert_bias chooses the top-k of the biased scores; it does not combine with "
           "noisy_gate_policy RSample (use None or Jitter)");
  for (int64_t e : c.experts_per_layer())
    MT_CHECK(
        c.moe_router_num_groups == 0 || e <= 1 ||
            (e % c.moe_router_num_groups == 0 && c.moe_router_group_topk >= 1 &&
             c.moe_router_group_topk <= c.moe_router_num_groups && c.topk >= c.moe_router_group_topk &&
             c.topk <= c.moe_router_group_topk * (e / c.moe_router_num_groups) && c.noisy_gate_policy != "RSample"),
        "moe_router_num_groups ", c.moe_router_num_groups, " / moe_router_group_topk ", c.moe_router_group_topk,
        " do not fit a layer of ", e, " experts at topk ", c.topk,
        ": num_groups must divide every layer's expert count, 1 <= group_topk <= num_groups, and group_topk <= "
        "topk <= group_topk x experts per group (not with noisy_gate_policy RSample)");
  MT_CHECK(c.moe_ffn_hidden_size >= 0 && c.moe_shared_expert_intermediate_size >= 0,
           "moe_ffn_hidden_size and moe_shared_expert_intermediate_size must not be negative (0: the default)");
  MT_CHECK(c.moe_router_score_function == "softmax" || c.moe_router_score_function == "sigmoid",
           "moe_router_score_function must be softmax or sigmoid, got '", c.moe_router_score_function, "'");
  MT_CHECK(c.moe_router_score_function == "softmax" || c.noisy_gate_policy != "RSample",
           "moe_router_score_function sigmoid takes the plain top-k; it does not combine with noisy_gate_policy "
           "RSample (use None or Jitter)");
  MT_CHECK(c.moe_router_topk_scaling_factor > 0, "moe_router_topk_scaling_factor must be positive, got ",
           c.moe_router_topk_scaling_factor);
  MT_CHECK(c.moe_router_drop_cost_samples >= 0,
           "moe_router_drop_cost_samples must not be negative (0: no drop cost), "
           "got ",
           c.moe_router_drop_cost_samples);
  MT_CHECK(c.moe_router_bias_update_rate >= 0, "moe_router_bias_update_rate must not be negative, got ",
           c.moe_router_bias_update_rate);
  if (c.distills()) validate_distillation(c, ranks);
  for (const std::string& t : c.eval_tasks) eval::make_eval_task(t);  // an unknown name, with the known ones
  MT_CHECK(c.eval_tasks.empty() || c.tensor_model_parallel_size == 1,
           "eval_tasks run with tensor_model_parallel_size 1 only (evaluate the checkpoint with moetrain eval)");
  MT_CHECK(c.eval_tasks_interval >= 0 && c.eval_tasks_limit >= 0,
           "eval_tasks_interval and eval_tasks_limit must not be negative");
  MT_CHECK(c.log_interval > 0 && c.eval_interval > 0 && c.eval_iters >= 0 && c.save_interval >= 0 && c.keep_last_n >= 0,
           "log_interval and eval_interval must be positive; eval_iters, save_interval, keep_last_n not negative");
}

std::string to_yaml(const TrainConfig& cfg) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  std::vector<const Key*> written;
  for (const Key& k : keys()) {
    // an alias (moe_aux_loss_coeff) names a member already written under its first name
    if (std::any_of(written.begin(), written.end(), [&](const Key* w) { return w->member == k.member; })) continue;
    written.push_back(&k);
    out << YAML::Key << k.name << YAML::Value;
    std::visit(
        [&](auto member) {
          using T = std::remove_cvref_t<decltype(cfg.*member)>;
          if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            out << YAML::Flow << YAML::BeginSeq;
            for (const std::string& s : cfg.*member) out << s;
            out << YAML::EndSeq;
          } else if constexpr (std::is_same_v<T, double>) {
            // The shortest decimal that reads back to the same double ("0.003", not 0.0030000000000000001).
            char buf[32];
            for (int digits = 6; digits <= 17; ++digits) {
              std::snprintf(buf, sizeof buf, "%.*g", digits, cfg.*member);
              if (std::strtod(buf, nullptr) == cfg.*member) break;
            }
            out << std::string(buf);
          } else {
            out << cfg.*member;
          }
        },
        k.member);
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace mt::train
