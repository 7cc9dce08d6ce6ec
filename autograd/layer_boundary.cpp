#include "autograd/layer_boundary.h"

#include "autograd/tape.h"

namespace mt {
namespace {
thread_local LayerBackwardListener* g_listener = nullptr;
}  // namespace

ListenToLayerBackward::ListenToLayerBackward(LayerBackwardListener* listener) : previous_(g_listener) {
  g_listener = listener;
}

ListenToLayerBackward::~ListenToLayerBackward() {
  g_listener = previous_;
}

namespace ag {
Variable mark_layer_start(const Variable& x, int64_t layer) {
  require_defined("mark_layer_start", {{"x", &x}});
  Variable out(x.value().reshape(x.shape()));
  if (any_requires_grad({&x})) {
    record_op("mark_layer_start", out, [xs = x.grad_slot(), layer](const Tensor& dout) {
      xs.accumulate(dout);
      if (g_listener) g_listener->layer_backward_done(layer);
    });
  }
  return out;
}
}  // namespace ag

}  // namespace mt
