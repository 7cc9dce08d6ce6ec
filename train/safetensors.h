// safetensors files: an 8-byte little-endian header length, a JSON header
// {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ..., "__metadata__": {...}}
// and the tensors' bytes. Written to a temporary name, synced and renamed; on reading, the header,
// every tensor's extent and the file length are checked, and errors name the file.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "runtime/checksum.h"
#include "runtime/tensor.h"

namespace mt::train {

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

// Returns a 64-bit checksum of the file's bytes (written into checkpoints' meta for verification).
uint64_t write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                           const std::map<std::string, std::string>& metadata = {});

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;  // CPU tensors
  std::map<std::string, std::string> metadata;
  uint64_t checksum = 0;
};
SafetensorsFile read_safetensors(const std::string& path);

}  // namespace mt::train
