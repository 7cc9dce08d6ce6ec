#include "moe/moe_probe.h"

#include <string>

namespace mt::moe {
namespace {
thread_local MoeProbe* t_probe = nullptr;
std::string g_broken_backward;
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

void set_broken_backward_for_tests(const char* op) {
  g_broken_backward = op ? op : "";
}

bool backward_broken_for_tests(const char* op) {
  return !g_broken_backward.empty() && g_broken_backward == op;
}

}  // namespace mt::moe
