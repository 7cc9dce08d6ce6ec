// Activation checkpointing (autograd/checkpoint.h). On the caller's tape a region is one function
// per output, which keeps that output's gradient, and before them an "anchor" function, which runs
// after all of them (the tape runs newest first) and does the recompute and its backward:
//
//   forward tape:  ... checkpoint(anchor) checkpoint_output(y_0) ... checkpoint_output(y_n-1) ...
//   backward:      dy_i kept as they arrive -> anchor: y' = fn(inputs) on a fresh tape,
//                  backward({y'_i}, {dy_i}) -> d(inputs), d(parameters) accumulated in place
#include "autograd/checkpoint.h"

#include <optional>

#include "autograd/autocast.h"
#include "autograd/tape.h"

namespace mt::ag {
namespace {

thread_local detail::DecisionLog* t_log = nullptr;
thread_local bool t_recomputing = false;

// While alive: `log` is this thread's decision log and recomputing() answers `recompute`.
class RegionScope {
 public:
  RegionScope(detail::DecisionLog* log, bool recompute) : log_(t_log), recomputing_(t_recomputing) {
    t_log = log;
    t_recomputing = recompute;
  }
  ~RegionScope() {
    t_log = log_;
    t_recomputing = recomputing_;
  }
  RegionScope(const RegionScope&) = delete;
  RegionScope& operator=(const RegionScope&) = delete;

 private:
  detail::DecisionLog* log_;
  bool recomputing_;
};

// One checkpointed region, from its forward until its backward has run.
struct Region {
  CheckpointFn fn;
  std::vector<Variable> inputs;  // what the region keeps (their values and gradient slots)
  DType autocast = DType::F32;   // the forward's GEMM precision
  detail::DecisionLog decisions;
  std::vector<Tensor> grads;  // [outputs]: each output's gradient once it has arrived

  // The anchor's function: recomputes the outputs with recording on and runs their backward.
  void backward();
};

void Region::backward() {
  Tape tape;
  TapeScope own_tape(tape);  // the recompute records here, with gradients on
  std::vector<Variable> outputs;
  {
    // The forward's precision, where the backward runs outside its autocast scope. (Without the
    // registry's 16-bit copy the weights are rounded where they are used: the same values.)
    std::optional<Autocast> cast;
    std::optional<FullPrecision> full;
    if (autocast_dtype() != autocast) {
      if (autocast == DType::F32)
        full.emplace();
      else
        cast.emplace(autocast);
    }
    decisions.next = 0;
    decisions.replay = true;
    RegionScope replay(&decisions, true);
    outputs = fn(inputs);
    MT_CHECK(outputs.size() == grads.size() && decisions.next == decisions.kept.size(),
             "checkpoint: the recompute gave ", outputs.size(), " outputs and took ", decisions.next,
             " decisions where the forward gave ", grads.size(), " and took ", decisions.kept.size(),
             "; a checkpointed region must run the same code in its forward and its recompute");
  }
  std::vector<Variable> roots;
  std::vector<Tensor> seeds;
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (!grads[i].defined() || !outputs[i].defined() || !outputs[i].requires_grad()) continue;
    roots.push_back(outputs[i]);
    seeds.push_back(grads[i]);
  }
  grads.clear();
  if (!roots.empty()) tape.backward(roots, seeds);
}

}  // namespace

namespace detail {
DecisionLog* current_decision_log() {
  return t_log;
}
}  // namespace detail

bool recomputing() {
  return t_recomputing;
}

std::vector<Variable> checkpoint(CheckpointFn fn, const std::vector<Variable>& inputs) {
  if (!grad_enabled() || t_recomputing) return fn(inputs);
  auto region = std::make_shared<Region>();
  region->fn = std::move(fn);
  region->inputs = inputs;
  region->autocast = autocast_dtype();
  std::vector<Variable> outputs;
  {
    NoGradGuard no_grad;
    RegionScope keep(&region->decisions, false);
    outputs = region->fn(inputs);
  }
  region->grads.resize(outputs.size());
  Variable anchor(Tensor::scalar(0.0, DType::F32));
  record_op("checkpoint", anchor, [region](const Tensor&) { region->backward(); });
  std::vector<Variable> result;
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (!outputs[i].defined()) {
      result.emplace_back();
      continue;
    }
    Variable out(outputs[i].value());
    // Keeps dy_i and gives the anchor a gradient, so that its function runs (after this one).
    record_op("checkpoint_output", out, [region, i, anchor = anchor.grad_slot()](const Tensor& dout) {
      region->grads[i] = dout;
      (void)anchor.grad_ref();
    });
    result.push_back(out);
  }
  return result;
}

}  // namespace mt::ag
