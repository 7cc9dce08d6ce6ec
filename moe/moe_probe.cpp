#include "moe/moe_probe.h"

namespace mt::moe {
namespace {
thread_local MoeProbe* t_probe = nullptr;
}  // namespace

MoeProbeScope::MoeProbeScope(MoeProbe* probe) : previous_(t_probe) {
  t_probe = probe;
}

MoeProbeScope::~MoeProbeScope() {
  t_probe = previous_;
}

MoeProbe* current_moe_probe() {
  return t_probe;
}

}  // namespace mt::moe
