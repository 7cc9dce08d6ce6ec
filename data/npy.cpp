#include "data/npy.h"

#include "runtime/error.h"
#include "runtime/file_util.h"

namespace mt::data {

uint64_t write_npy(const std::string& path, const std::string& descr, const std::vector<int64_t>& shape,
                   const void* data, size_t size) {
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
  const unsigned char preamble[10] = {
      0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, uint8_t(header.size() & 0xff), uint8_t(header.size() >> 8)};
  bytes.append(reinterpret_cast<const char*>(preamble), 10);
  bytes += header;
  bytes.append(static_cast<const char*>(data), size);
  write_file_atomically(path, bytes);
  return checksum64(bytes.data(), bytes.size());
}

namespace {

// The dimensions in a header's "(5, 2)"; throws naming the file when one is not a count.
std::vector<int64_t> parse_shape(const std::string& dims, const std::string& path) {
  std::vector<int64_t> shape;
  size_t pos = 0;
  while (pos < dims.size()) {
    size_t comma = dims.find(',', pos);
    if (comma == std::string::npos) comma = dims.size();
    std::string part = dims.substr(pos, comma - pos);
    pos = comma + 1;
    size_t first = part.find_first_not_of(' ');
    if (first == std::string::npos) continue;  // "(5,)": nothing after the comma
    size_t last = part.find_last_not_of(' ');
    std::string digits = part.substr(first, last - first + 1);
    MT_CHECK(!digits.empty() && digits.size() <= 15 && digits.find_first_not_of("0123456789") == std::string::npos, "'",
             path, "' has a bad dimension '", digits, "' in its shape");
    shape.push_back(std::stoll(digits));
  }
  return shape;
}

}  // namespace

NpyArray read_npy(const std::string& path) {
  std::string s = read_file(path);
  MT_CHECK(s.size() >= 10 && s.compare(0, 6, "\x93NUMPY") == 0 && s[6] == 1, "'", path, "' is not a .npy (v1) file");
  size_t header_len = uint8_t(s[8]) | (size_t(uint8_t(s[9])) << 8);
  MT_CHECK(s.size() >= 10 + header_len, "'", path, "' is truncated: ", s.size(), " bytes, shorter than its ",
           10 + header_len, "-byte header");
  std::string header = s.substr(10, header_len);
  NpyArray a;
  a.checksum = checksum64(s.data(), s.size());
  size_t d = header.find("'descr': '");
  MT_CHECK(d != std::string::npos && header.find("'fortran_order': False") != std::string::npos, "'", path,
           "' has an unsupported header: ", header);
  a.descr = header.substr(d + 10, header.find('\'', d + 10) - (d + 10));
  size_t open = header.find("'shape': (");
  size_t close = open == std::string::npos ? open : header.find(')', open);
  MT_CHECK(open != std::string::npos && close != std::string::npos, "'", path, "' has no shape in its header");
  a.shape = parse_shape(header.substr(open + 10, close - open - 10), path);
  size_t item = a.descr == "<i4" || a.descr == "<u4" ? 4 : a.descr == "<i8" ? 8 : 0;
  MT_CHECK(item > 0, "'", path, "' holds dtype ", a.descr, "; expected <i4 or <i8");
  size_t data_bytes = s.size() - 10 - header_len, count = 1;
  for (int64_t dim : a.shape) {
    MT_CHECK(dim == 0 || count <= (size_t(1) << 56) / size_t(dim), "'", path, "' declares an implausible shape (",
             header.substr(open + 10, close - open - 10), "): the file is damaged");
    count *= size_t(dim);
  }
  MT_CHECK(data_bytes == count * item, "'", path, "' holds ", data_bytes, " data bytes but its shape needs ", count,
           " elements of ", item, " bytes: the file is truncated or damaged");
  a.data.assign(s.begin() + std::ptrdiff_t(10 + header_len), s.end());
  return a;
}

}  // namespace mt::data
