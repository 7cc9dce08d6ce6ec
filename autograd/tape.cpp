#include "autograd/tape.h"

#include "runtime/ops.h"

namespace mt {
namespace {
thread_local bool g_grad_enabled = true;
thread_local Tape* g_scoped_tape = nullptr;  // a TapeScope's tape, else the thread's own
}  // namespace

Tape& current_tape() {
  thread_local Tape tape;
  return g_scoped_tape ? *g_scoped_tape : tape;
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

TapeScope::TapeScope(Tape& tape) : previous_tape_(g_scoped_tape), previous_grad_(g_grad_enabled) {
  g_scoped_tape = &tape;
  g_grad_enabled = true;
}

TapeScope::~TapeScope() {
  g_scoped_tape = previous_tape_;
  g_grad_enabled = previous_grad_;
}

void Tape::record(const char* op, const Variable& out, BackwardFn backward) {
  GradSlot::Cell& cell = *out.impl_->slot.cell_;
  cell.requires_grad = true;
  cell.producer_tape = this;
  nodes_.push_back({op, out.impl_->slot, std::move(backward)});
  if (nodes_.size() >= collect_at_) {
    collect();
    collect_at_ = std::max<size_t>(1024, 2 * nodes_.size());
  }
}

void Tape::collect() {
  // Newest first: dropping a function releases the slots it captured, which can make the
  // functions that produced them unreachable in turn.
  std::vector<bool> keep(nodes_.size(), true);
  for (size_t i = nodes_.size(); i-- > 0;) {
    Node& n = nodes_[i];
    bool reachable = n.out.cell_.use_count() > 1 || n.out.cell_->grad.defined();
    if (!reachable) {
      n.backward = nullptr;
      keep[i] = false;
    }
  }
  size_t w = 0;
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (keep[i]) nodes_[w++] = std::move(nodes_[i]);
  nodes_.resize(w);
}

void Tape::backward(const Variable& root, const Tensor* seed) {
  MT_CHECK(root.defined() && root.requires_grad(),
           "backward: the root does not require a gradient (no recorded op leads to it)");
  GradSlot::Cell& root_cell = *root.impl_->slot.cell_;
  MT_CHECK(root_cell.producer_tape == nullptr || root_cell.producer_tape == this,
           "backward: the root was computed on another thread; call backward() on the thread that ran the forward");
  if (seed) {
    MT_CHECK(seed->shape() == root.shape(), "backward: seed ", seed->str(), " does not match root ",
             root.value().str());
    root.grad_ref().copy_from(*seed);
  } else {
    root.grad_ref().fill_(1.0);
  }
  run();
}

void Tape::backward(const std::vector<Variable>& roots, const std::vector<Tensor>& seeds) {
  MT_CHECK(roots.size() == seeds.size(), "backward: ", roots.size(), " roots but ", seeds.size(), " seeds");
  for (size_t i = 0; i < roots.size(); ++i) {
    if (!seeds[i].defined()) continue;
    const Variable& root = roots[i];
    MT_CHECK(root.defined() && root.requires_grad(), "backward: root ", i, " does not require a gradient");
    MT_CHECK(seeds[i].shape() == root.shape(), "backward: seed ", seeds[i].str(), " does not match root ", i, " ",
             root.value().str());
    GradSlot::Cell& cell = *root.impl_->slot.cell_;
    if (cell.grad.defined())
      ops::add_(root.grad_ref(), seeds[i]);
    else
      root.grad_ref().copy_from(seeds[i]);
  }
  run();
}

void Tape::run() {
  try {
    for (size_t i = nodes_.size(); i-- > 0;) {
      Node& n = nodes_[i];
      GradSlot::Cell& out = *n.out.cell_;
      if (!out.grad.defined() || !n.backward) continue;
      n.backward(out.grad);
      n.backward = nullptr;  // release the saved activations now
      out.grad = Tensor();   // and the output's gradient: nothing reads it any more
      out.graph_freed = true;
    }
  } catch (...) {
    nodes_.clear();
    throw;
  }
  size_t w = 0;
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i].backward) nodes_[w++] = std::move(nodes_[i]);
  nodes_.resize(w);
  collect();
}

bool any_requires_grad(std::initializer_list<const Variable*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Variable* v : inputs)
    if (v && v->requires_grad()) return true;
  return false;
}

void record_op(const char* op, const Variable& out, BackwardFn backward) {
  current_tape().record(op, out, std::move(backward));
}

void require_defined(const char* op, std::initializer_list<std::pair<const char*, const Variable*>> args) {
  for (auto& [name, v] : args) MT_CHECK(v->defined(), op, ": argument ", name, " is an undefined Variable");
}

}  // namespace mt
