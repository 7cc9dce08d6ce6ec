#include "runtime/file_util.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
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

void check_readable_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  MT_CHECK(!std::filesystem::is_directory(path, ec), "cannot read ", what, " '", path,
           "': it is a folder; give the path of a file");
  MT_CHECK(::access(path.c_str(), R_OK) == 0, "cannot read ", what, " '", path, "': ", std::strerror(errno));
}

std::string read_file(const std::string& path, const std::string& what) {
  check_readable_file(path, what);
  std::ifstream in(path, std::ios::binary);
  MT_CHECK(in, "cannot read ", what, " '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  MT_CHECK(!in.bad(), "cannot read ", what, " '", path, "': a read error");
  return ss.str();
}

}  // namespace mt
