// NumPy .npy files (format 1.0), for the GPT index caches, so that numpy can read them too:
// "\x93NUMPY", version 1.0, u16 header length, a Python-dict header padded with spaces and a
// newline so that the data starts at a multiple of 64 bytes, then C-order data.
#pragma once

#include "runtime/checksum.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace mt::data {

struct NpyArray {
  std::string descr;  // "<i4", "<i8"
  std::vector<int64_t> shape;
  std::vector<unsigned char> data;
  uint64_t checksum = 0;  // checksum64 of the whole file, as write_npy returns it
};

using mt::checksum64;  // runtime/checksum.h: the same function as the checkpoints' file checksums

// Written to a temporary name and renamed: never half-written. Returns the file's checksum64.
uint64_t write_npy(const std::string& path, const std::string& descr, const std::vector<int64_t>& shape,
                   const void* data, size_t bytes);
// Throws mt::Error naming the file when it is not a readable .npy of this kind.
NpyArray read_npy(const std::string& path);

template <class T>
std::vector<T> npy_values(const NpyArray& a) {
  std::vector<T> v(a.data.size() / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), a.data.data(), v.size() * sizeof(T));
  return v;
}

}  // namespace mt::data
