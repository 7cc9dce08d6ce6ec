// The tape: ops append a backward function while the forward runs; backward() replays them in
// reverse. Each backward function reads its output's gradient and accumulates into its inputs'
// gradients, so a Variable used twice simply receives both contributions.
//
// There is one tape per thread (current_tape()). Recording is on unless a NoGradGuard is alive
// (evaluation, a MoS teacher, the finite-difference probes of gradcheck).
#pragma once

#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "autograd/variable.h"

namespace mt {

class Tape {
 public:
  void record(const char* op, std::function<void()> backward);
  // Seeds root's gradient (ones, or `seed`) and runs every recorded function in reverse order,
  // then clears the tape (the saved activations are released).
  void backward(const Variable& root, const Tensor* seed = nullptr);
  void clear() { nodes_.clear(); }
  size_t size() const { return nodes_.size(); }

 private:
  struct Node {
    const char* op;
    std::function<void()> backward;
  };
  std::vector<Node> nodes_;
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

// For op implementations: true when gradients are on and any input requires one.
bool any_requires_grad(std::initializer_list<const Variable*> inputs);

// For op implementations: marks `out` as requiring a gradient and records `backward`, which runs
// only when a gradient reached `out`. Called only when any_requires_grad() said yes.
void record_op(const char* op, const Variable& out, std::function<void()> backward);

}  // namespace mt
