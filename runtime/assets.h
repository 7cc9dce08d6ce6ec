// The files moetrain ships (assets/: GPT-2 vocabulary and merges, Tiny Shakespeare, the zero-shot
// task subsets), found at run time relative to the running program, never through a path compiled
// in, so a moved, copied or installed program reads its own copy:
//   1. $MOETRAIN_ASSETS, when set (then only there);
//   2. <folder of the executable>/../share/moetrain/assets: <prefix>/bin/moetrain after
//      `cmake --install build --prefix <prefix>` (or `make install`), and build/bin/moetrain in a
//      build tree, whose share/moetrain/assets the configure step links to the source's assets/.
#pragma once

#include <string>
#include <vector>

namespace mt {

// The full path of a bundled file or folder, e.g. asset_path("gpt2/encoder.json"). Throws
// mt::Error naming every folder it looked in, and how to point it elsewhere, when none holds it.
std::string asset_path(const std::string& relative);

// The folders asset_path looks in, in order ($MOETRAIN_ASSETS alone when it is set).
std::vector<std::string> asset_search_dirs();

// The running program's own file (/proc/self/exe, links resolved); empty when unknown.
std::string executable_path();

}  // namespace mt
