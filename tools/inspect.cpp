// `moetrain inspect --load DIR`: structure, parameter counts and expert loads of a checkpoint.
#include "toolkit/inspect.h"

#include <cstdio>

#include "tools/args.h"
#include "tools/command.h"

namespace mt::cli {

int run_inspect(const Args& args) {
  ArgParser p("inspect", {"load"}, {"help"});
  p.parse(args);
  if (p.flag("help") || !p.has("load")) {
    std::printf(
        "usage: moetrain inspect --load DIR\n\n"
        "Prints a checkpoint's model structure (which layers are MoE, experts per layer), its\n"
        "parameter counts (total and active per token) and the expert loads of the last logged step.\n");
    return p.flag("help") ? 0 : 1;
  }
  std::printf("%s", toolkit::inspect_checkpoint(p.get("load")).c_str());
  return 0;
}

}  // namespace mt::cli
