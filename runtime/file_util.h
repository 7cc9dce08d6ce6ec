// Files that are either complete or absent: written under a temporary name in the same folder,
// flushed and synced, then renamed over the final name (rename is atomic on POSIX). Used by
// everything that must survive a crash, a kill or a full disk: checkpoints, index caches.
#pragma once

#include <cstddef>
#include <string>

namespace mt {

// Throws mt::Error naming the file (and "disk full?") when any step fails; no temporary remains.
void write_file_atomically(const std::string& path, const void* data, size_t bytes);
inline void write_file_atomically(const std::string& path, const std::string& text) {
  write_file_atomically(path, text.data(), text.size());
}

// The whole file; throws mt::Error naming it when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace mt
