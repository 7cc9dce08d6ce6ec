// Layer boundaries in the backward. A model marks where each of its layers starts
// (mark_layer_start on the layer's input: the identity); the mark's backward runs once every op
// recorded after it has run its own — the whole layer's backward, a checkpointed region's
// recompute and backward included — and then tells the thread's LayerBackwardListener that the
// layer is done: no later contribution reaches the gradients of parameters used only inside it.
// ZeRO stage 2 reduces those gradients there (train/zero_gradients.h). The marks are structural
// (the same on every rank running the same model), so what a listener does at them happens at the
// same point of every rank's backward.
#pragma once

#include <cstdint>

#include "autograd/variable.h"

namespace mt {

class LayerBackwardListener {
 public:
  virtual ~LayerBackwardListener() = default;
  // The backward of layer `layer` has run (layers end in decreasing order within a backward).
  virtual void layer_backward_done(int64_t layer) = 0;
};

// While alive, this thread's layer marks report to `listener` (nullptr: to nobody).
class ListenToLayerBackward {
 public:
  explicit ListenToLayerBackward(LayerBackwardListener* listener);
  ~ListenToLayerBackward();
  ListenToLayerBackward(const ListenToLayerBackward&) = delete;
  ListenToLayerBackward& operator=(const ListenToLayerBackward&) = delete;

 private:
  LayerBackwardListener* previous_;
};

namespace ag {
// y = x (a view), recorded so that its backward (dx += dy) then reports layer_backward_done(layer).
Variable mark_layer_start(const Variable& x, int64_t layer);
}  // namespace ag

}  // namespace mt
