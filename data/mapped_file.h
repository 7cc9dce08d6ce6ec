// A read-only memory map of a whole file (POSIX mmap); unmapped when destroyed.
#pragma once

#include <cstddef>
#include <string>

namespace mt::data {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws mt::Error naming the file
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace mt::data
