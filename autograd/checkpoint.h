// Activation checkpointing (Megatron's --checkpoint-activations, recompute granularity "full"): a
// region of the forward that keeps only its inputs and recomputes everything else in the backward.
//
//   forward   outputs = fn(inputs) with recording off: the region's intermediates are freed as soon
//             as the next op has read them; the tape holds the inputs (and fn) instead.
//   backward  once the outputs' gradients are in: fn(inputs) again, recording on a tape of its own
//             (TapeScope), then that tape's backward from the recomputed outputs seeded with those
//             gradients. Parameter gradients accumulate into their usual slots (the registry's flat
//             buffers), the inputs' gradients into the inputs' slots, and the graph is freed.
//
// The gradients are bit-identical to running fn without the region when the recompute computes
// the same values: the same kernels on the same inputs (this needs no extra care on the CPU),
// random numbers keyed rather than drawn from a stream (dropout: autograd/ops.h), the autocast
// dtype of the forward (restored by the recompute when the backward runs outside that scope) and
// any decision taken on the host kept with checkpoint_decision (an MoE layer's routing), so the
// recompute reuses it instead of taking it again. Collectives inside fn run again in the backward,
// on every rank in the same order. The recompute runs fn (and what it captures) in the backward:
// the objects fn refers to must outlive it.
#pragma once

#include <functional>
#include <memory>
#include <typeinfo>
#include <vector>

#include "autograd/variable.h"
#include "runtime/error.h"

namespace mt::ag {

// The region's function: its inputs -> its outputs (float Variables).
using CheckpointFn = std::function<std::vector<Variable>(const std::vector<Variable>& inputs)>;

// Runs fn(inputs) as a checkpointed region and returns its outputs. When gradients are off (or
// inside a recompute, which is already recording) it simply returns fn(inputs).
std::vector<Variable> checkpoint(CheckpointFn fn, const std::vector<Variable>& inputs);

// True while a checkpointed region's recompute runs fn on this thread (what fn reported in the
// forward, such as metrics, need not be reported twice).
bool recomputing();

namespace detail {
// The decisions of one region: kept in its forward, handed back in order in its recompute.
struct DecisionLog {
  struct Entry {
    const std::type_info* type;
    std::shared_ptr<const void> value;
  };
  std::vector<Entry> kept;
  size_t next = 0;
  bool replay = false;
};
// The log of the region whose forward or recompute runs on this thread (nullptr: none).
DecisionLog* current_decision_log();
}  // namespace detail

// A decision taken on the host inside a region (an MoE layer's routing): in the region's forward
// make() runs and its result is kept; the recompute gets that result back (the n-th call of the
// recompute the forward's n-th) without running make(). Outside any region: make().
template <class T, class Make>
T checkpoint_decision(Make&& make) {
  detail::DecisionLog* log = detail::current_decision_log();
  if (!log) return make();
  if (log->replay) {
    MT_CHECK(log->next < log->kept.size() && *log->kept[log->next].type == typeid(T),
             "checkpoint: the recompute took decision ", log->next + 1,
             " that the forward did not take; "
             "a checkpointed region must run the same code in its forward and its recompute");
    return *static_cast<const T*>(log->kept[log->next++].value.get());
  }
  auto kept = std::make_shared<const T>(make());
  log->kept.push_back({&typeid(T), kept});
  return *kept;
}

}  // namespace mt::ag
