// `moetrain inspect`: what a checkpoint holds - the model's structure (which layers are MoE,
// experts per layer), parameter counts (total, and active per token: a token only runs top-k
// experts of each MoE layer), and the expert loads of the last logged step of its run.
#pragma once

#include <string>

namespace mt::toolkit {

// A readable report of the checkpoint at `path` (a checkpoint folder or a save folder).
std::string inspect_checkpoint(const std::string& path);

}  // namespace mt::toolkit
