#include "data/npy.h"

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "runtime/error.h"
#include "runtime/file_util.h"

namespace mt::data {

void write_npy(const std::string& path, const std::string& descr, const std::vector<int64_t>& shape, const void* data,
               size_t size) {
  // numpy's own spelling: "(5,)" for one dimension, "(5, 2)" for two.
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) dims += ", ";
    dims += std::to_string(shape[i]);
  }
  if (shape.size() == 1) dims += ",";
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::string bytes;
  bytes.reserve(10 + header.size() + size);
  const unsigned char preamble[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, uint8_t(header.size() & 0xff),
                                      uint8_t(header.size() >> 8)};
  bytes.append(reinterpret_cast<const char*>(preamble), 10);
  bytes += header;
  bytes.append(static_cast<const char*>(data), size);
  write_file_atomically(path, bytes);
}

NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MT_CHECK(in, "cannot read '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  MT_CHECK(s.size() >= 10 && s.compare(0, 6, "\x93NUMPY") == 0 && s[6] == 1, "'", path, "' is not a .npy (v1) file");
  size_t header_len = uint8_t(s[8]) | (size_t(uint8_t(s[9])) << 8);
  MT_CHECK(s.size() >= 10 + header_len, "'", path, "' is truncated");
  std::string header = s.substr(10, header_len);
  NpyArray a;
  size_t d = header.find("'descr': '");
  MT_CHECK(d != std::string::npos && header.find("'fortran_order': False") != std::string::npos, "'", path,
           "' has an unsupported header: ", header);
  a.descr = header.substr(d + 10, header.find('\'', d + 10) - (d + 10));
  size_t open = header.find("'shape': ("), close = header.find(')', open);
  MT_CHECK(open != std::string::npos && close != std::string::npos, "'", path, "' has no shape in its header");
  std::stringstream dims(header.substr(open + 10, close - open - 10));
  std::string part;
  int64_t count = 1;
  while (std::getline(dims, part, ','))
    if (part.find_first_not_of(' ') != std::string::npos) {
      a.shape.push_back(std::stoll(part));
      count *= a.shape.back();
    }
  size_t item = a.descr == "<i4" || a.descr == "<u4" ? 4 : a.descr == "<i8" ? 8 : 0;
  MT_CHECK(item > 0, "'", path, "' holds dtype ", a.descr, "; expected <i4 or <i8");
  MT_CHECK(s.size() == 10 + header_len + size_t(count) * item, "'", path, "' is truncated: ", s.size() - 10 - header_len,
           " data bytes for shape of ", count, " elements");
  a.data.assign(s.begin() + 10 + header_len, s.end());
  return a;
}

}  // namespace mt::data
