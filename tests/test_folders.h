// The temporary folders a test process made, removed when it exits: a test that fails or returns
// early leaves nothing behind in /tmp, run after run. MOETRAIN_KEEP_TEST_DIRS=1 keeps them to look
// into after a failure. A forked child must end with _exit (as the tests' children do): exit()
// would run this destructor in the child too.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

namespace testfolders {

class TestFolders {
 public:
  static void add(const std::filesystem::path& d) {
    static TestFolders folders;
    std::lock_guard<std::mutex> lock(folders.mutex_);
    folders.made_.push_back(d);
  }
  ~TestFolders() {
    const char* keep = std::getenv("MOETRAIN_KEEP_TEST_DIRS");
    if (keep && std::string(keep) == "1") return;
    std::error_code ec;  // (nothing to throw to at exit)
    for (const std::filesystem::path& d : made_) std::filesystem::remove_all(d, ec);
  }

 private:
  std::mutex mutex_;
  std::vector<std::filesystem::path> made_;
};

// An empty folder under the temporary directory, removed when the process exits: <name>_<pid>, so
// two test processes (two checkouts' suites on one machine, ctest -j) never share one.
inline std::filesystem::path fresh_temp_dir(const std::string& name) {
  std::filesystem::path d = std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  TestFolders::add(d);
  return d;
}

}  // namespace testfolders
