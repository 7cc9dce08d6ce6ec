#include "autograd/tape.h"

namespace mt {
namespace {
thread_local bool g_grad_enabled = true;
}

Tape& current_tape() {
  thread_local Tape tape;
  return tape;
}

bool grad_enabled() {
  return g_grad_enabled;
}

NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) {
  g_grad_enabled = false;
}
NoGradGuard::~NoGradGuard() {
  g_grad_enabled = previous_;
}

void Tape::record(const char* op, std::function<void()> backward) {
  nodes_.push_back({op, std::move(backward)});
}

void Tape::backward(const Variable& root, const Tensor* seed) {
  MT_CHECK(root.defined() && root.requires_grad(),
           "backward: the root does not require a gradient (no recorded op leads to it)");
  if (seed) {
    MT_CHECK(seed->shape() == root.shape(), "backward: seed ", seed->str(), " does not match root ",
             root.value().str());
    root.grad_ref().copy_from(*seed);
  } else {
    root.grad_ref().fill_(1.0);
  }
  for (size_t i = nodes_.size(); i-- > 0;) {
    nodes_[i].backward();
    nodes_[i].backward = nullptr;  // release saved tensors as we go
  }
  nodes_.clear();
}

bool any_requires_grad(std::initializer_list<const Variable*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Variable* v : inputs)
    if (v && v->requires_grad()) return true;
  return false;
}

void record_op(const char* op, const Variable& out, std::function<void()> backward) {
  out.set_requires_grad(true);
  current_tape().record(op, [out, backward = std::move(backward)] {
    if (out.grad().defined()) backward();
  });
}

}  // namespace mt
