// Hooks for the teaching tools (`moetrain gradcheck`, `moetrain trace`): while a probe is
// installed on this thread (MoeProbeScope), every MoE layer's forward reports to it:
//   on_routing  the routing the layer computed from its gate; the probe may return another one
//               to use instead (a gradcheck replays the unperturbed forward's decisions and notes
//               when a perturbation would have changed them);
//   on_value    each named intermediate (gate_logits, gate_probs, ...); the probe may return a
//               wrapped Variable (ag::observe) to see its gradient in the backward, or one whose
//               backward is deliberately wrong (the gradcheck's own tests inject faults this way).
// Without a probe the layer does nothing extra.
#pragma once

#include <cstdint>

#include "autograd/variable.h"
#include "moe/router.h"

namespace mt::moe {

class MoeProbe {
 public:
  virtual ~MoeProbe() = default;
  virtual const Routing* on_routing(int64_t layer, const Routing& computed) {
    (void)layer, (void)computed;
    return nullptr;
  }
  virtual Variable on_value(int64_t layer, const char* name, const Variable& v) {
    (void)layer, (void)name;
    return v;
  }
};

class MoeProbeScope {
 public:
  explicit MoeProbeScope(MoeProbe* probe);
  ~MoeProbeScope();
  MoeProbeScope(const MoeProbeScope&) = delete;
  MoeProbeScope& operator=(const MoeProbeScope&) = delete;

 private:
  MoeProbe* previous_;
};

MoeProbe* current_moe_probe();  // nullptr when none is installed

}  // namespace mt::moe
