#include "runtime/assets.h"

#include <cstdlib>
#include <filesystem>

#include "runtime/error.h"

namespace mt {
namespace fs = std::filesystem;

std::string executable_path() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : exe.string();
}

std::vector<std::string> asset_search_dirs() {
  const char* env = std::getenv("MOETRAIN_ASSETS");
  if (env && *env) return {env};
  std::string exe = executable_path();
  if (exe.empty()) return {};
  return {(fs::path(exe).parent_path().parent_path() / "share" / "moetrain" / "assets").lexically_normal().string()};
}

std::string asset_path(const std::string& relative) {
  std::vector<std::string> dirs = asset_search_dirs();
  std::error_code ec;
  for (const std::string& dir : dirs) {
    fs::path p = fs::path(dir) / relative;
    if (fs::exists(p, ec)) return p.string();
  }
  const char* env = std::getenv("MOETRAIN_ASSETS");
  const std::string fix =
      "set MOETRAIN_ASSETS to a folder holding gpt2/, tinyshakespeare/ and eval/ (the repository's assets/ or "
      "<prefix>/share/moetrain/assets)";
  if (env && *env)
    throw Error("moetrain's bundled file '" + relative + "' is not in $MOETRAIN_ASSETS: '" +
                (fs::path(env) / relative).string() + "' does not exist; " + fix + ", or unset it to use the copy " +
                "next to the program");
  if (dirs.empty())
    throw Error("moetrain's bundled file '" + relative +
                "' cannot be looked up: the program's own path is unknown (/proc/self/exe); " + fix);
  throw Error("moetrain's bundled file '" + relative + "' was not found next to the program " + executable_path() +
              ": '" + (fs::path(dirs[0]) / relative).string() +
              "' does not exist. Install the program with `cmake --install` or `make install` (they copy the "
              "files there), or " +
              fix);
}

}  // namespace mt
