// The tape: ops append a backward function while the forward runs; backward(root) replays them
// in reverse. Each backward function receives its output's gradient and accumulates into its
// inputs' gradient slots, so a Variable used twice simply receives both contributions.
//
// backward(root) runs exactly the recorded functions whose output received a gradient (the part
// of the graph that leads to root), releasing each one, and the gradient of its output, as soon as
// it has run. Recorded functions that root does not depend on stay on the tape for a later
// backward() of another root, and are dropped once nothing can reach them any more. Running a
// backward through a part that an earlier backward() already released is an error, not a
// silent loss.
//
// There is one tape per thread (current_tape()). Recording is on unless a NoGradGuard is alive
// (evaluation, a MoS teacher, the finite-difference probes of gradcheck). A TapeScope records on
// another tape for a while (a checkpointed region's recompute, autograd/checkpoint.h).
#pragma once

#include <functional>
#include <initializer_list>
#include <vector>

#include "autograd/variable.h"

namespace mt {

using BackwardFn = std::function<void(const Tensor& dout)>;

class Tape {
 public:
  void record(const char* op, const Variable& out, BackwardFn backward);
  // Seeds root's gradient (ones, or `seed`) and runs the recorded functions that lead to it.
  void backward(const Variable& root, const Tensor* seed = nullptr);
  // Several roots at once: adds seeds[i] (undefined: skipped) to roots[i]'s gradient, then runs
  // the recorded functions that lead to any of them (a checkpointed region's outputs).
  void backward(const std::vector<Variable>& roots, const std::vector<Tensor>& seeds);
  void clear() { nodes_.clear(); }
  size_t size() const { return nodes_.size(); }

 private:
  struct Node {
    const char* op;
    GradSlot out;
    BackwardFn backward;
  };
  // Runs the recorded functions whose output has a gradient, newest first, releasing each.
  void run();
  // Drops the functions whose output nobody can give a gradient to any more.
  void collect();
  std::vector<Node> nodes_;
  size_t collect_at_ = 1024;
};

Tape& current_tape();
bool grad_enabled();

// While alive, ops record nothing and their outputs do not require gradients.
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// While alive, ops record on `tape` instead of the thread's own, with gradients on: the recompute
// of a checkpointed region builds its graph on a tape of its own (autograd/checkpoint.h).
class TapeScope {
 public:
  explicit TapeScope(Tape& tape);
  ~TapeScope();
  TapeScope(const TapeScope&) = delete;
  TapeScope& operator=(const TapeScope&) = delete;

 private:
  Tape* previous_tape_;
  bool previous_grad_;
};

// For op implementations: true when gradients are on and any input requires one.
bool any_requires_grad(std::initializer_list<const Variable*> inputs);

// For op implementations: marks `out` as requiring a gradient and records `backward` on the
// current tape. Called only when any_requires_grad() said yes. The function should capture the
// inputs' grad_slot() (not the Variables) unless it needs their values.
void record_op(const char* op, const Variable& out, BackwardFn backward);

// For op implementations: throws an mt::Error naming the op when an argument is undefined.
void require_defined(const char* op, std::initializer_list<std::pair<const char*, const Variable*>> args);

}  // namespace mt
