// Files that are either complete or absent: written under a temporary name in the same folder,
// flushed and synced, then renamed over the final name (rename is atomic on POSIX). Used by
// everything that must survive a crash, a kill or a full disk: checkpoints, index caches.
// And whole-file reads whose errors name the file (a folder given for a file included).
#pragma once

#include <cstddef>
#include <string>

namespace mt {

// Throws mt::Error naming the file (and "disk full?") when any step fails; no temporary remains.
void write_file_atomically(const std::string& path, const void* data, size_t bytes);
inline void write_file_atomically(const std::string& path, const std::string& text) {
  write_file_atomically(path, text.data(), text.size());
}

// Throws mt::Error "cannot read <what> '<path>': ..." when the path is a folder or cannot be
// opened for reading (missing, no permission), so no reader meets a folder's read error.
void check_readable_file(const std::string& path, const std::string& what = "file");
// The whole file; throws mt::Error naming it (as `what`, e.g. "config file") when it cannot be read.
std::string read_file(const std::string& path, const std::string& what = "file");

}  // namespace mt
