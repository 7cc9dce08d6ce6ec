#include "runtime/file_util.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "runtime/error.h"

namespace mt {

void write_file_atomically(const std::string& path, const void* data, size_t bytes) {
  std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  MT_CHECK(f, "cannot create '", tmp, "': ", std::strerror(errno));
  bool ok = (bytes == 0 || std::fwrite(data, 1, bytes, f) == bytes) && std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  int err = errno;
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) err = errno;
    std::remove(tmp.c_str());
    throw Error("cannot write '" + path + "' (disk full or read-only?): " + std::strerror(err));
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MT_CHECK(in, "cannot read '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace mt
