#include "train/safetensors.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runtime/file_util.h"

namespace mt::train {
namespace {

const char* st_dtype(DType t) {
  switch (t) {
    case DType::F32:
      return "F32";
    case DType::F64:
      return "F64";
    case DType::BF16:
      return "BF16";
    case DType::F16:
      return "F16";
    case DType::I32:
      return "I32";
    case DType::I64:
      return "I64";
  }
  return "?";
}

bool dtype_from_st(const std::string& s, DType& out) {
  for (DType t : {DType::F32, DType::F64, DType::BF16, DType::F16, DType::I32, DType::I64})
    if (s == st_dtype(t)) {
      out = t;
      return true;
    }
  return false;
}

}  // namespace

uint64_t write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                           const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  size_t offset = 0;
  for (const NamedTensor& t : tensors) {
    MT_CHECK(t.tensor.device().is_cpu(), "write_safetensors: '", t.name, "' is not a CPU tensor");
    header[t.name] = {{"dtype", st_dtype(t.tensor.dtype())},
                      {"shape", t.tensor.shape()},
                      {"data_offsets", {offset, offset + t.tensor.nbytes()}}};
    offset += t.tensor.nbytes();
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // align the data to 8 bytes
  std::vector<unsigned char> bytes(8 + text.size() + offset);
  uint64_t n = text.size();
  std::memcpy(bytes.data(), &n, 8);
  std::memcpy(bytes.data() + 8, text.data(), text.size());
  size_t pos = 8 + text.size();
  for (const NamedTensor& t : tensors) {
    if (t.tensor.nbytes()) std::memcpy(bytes.data() + pos, t.tensor.raw(), t.tensor.nbytes());
    pos += t.tensor.nbytes();
  }
  write_file_atomically(path, bytes.data(), bytes.size());
  return checksum64(bytes.data(), bytes.size());
}

SafetensorsFile read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MT_CHECK(in, "cannot read checkpoint file '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string bytes = ss.str();
  MT_CHECK(bytes.size() >= 8, "checkpoint file '", path, "' is truncated (", bytes.size(), " bytes)");
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  MT_CHECK(n <= bytes.size() - 8, "checkpoint file '", path, "' is truncated or not a safetensors file (header of ", n,
           " bytes in a file of ", bytes.size(), ")");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.substr(8, n));
  } catch (const nlohmann::json::exception& e) {
    throw Error("checkpoint file '" + path + "' has a corrupted header: " + e.what());
  }
  MT_CHECK(header.is_object(), "checkpoint file '", path, "' has a corrupted header (not a JSON object)");
  SafetensorsFile out;
  size_t data_start = 8 + n, data_bytes = bytes.size() - data_start, expected_end = 0;
  for (auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      for (auto& [k, v] : info.items()) out.metadata[k] = v.is_string() ? v.get<std::string>() : v.dump();
      continue;
    }
    DType dtype;
    MT_CHECK(info.is_object() && info.contains("dtype") && info["dtype"].is_string() &&
                 dtype_from_st(info["dtype"].get<std::string>(), dtype) && info.contains("shape") &&
                 info["shape"].is_array() && info.contains("data_offsets") && info["data_offsets"].size() == 2,
             "checkpoint file '", path, "': entry '", name, "' is corrupted or has an unsupported dtype");
    Shape shape = info["shape"].get<Shape>();
    size_t begin = info["data_offsets"][0].get<size_t>(), end = info["data_offsets"][1].get<size_t>();
    size_t need = size_t(shape_numel(shape)) * dtype_size(dtype);
    MT_CHECK(end >= begin && end - begin == need, "checkpoint file '", path, "': tensor '", name, "' declares ",
             end - begin, " bytes but its shape needs ", need);
    MT_CHECK(end <= data_bytes, "checkpoint file '", path, "' is truncated: tensor '", name, "' ends at byte ",
             data_start + end, " of a ", bytes.size(), "-byte file");
    Tensor t = Tensor::empty(shape, dtype);
    if (need) std::memcpy(t.raw(), bytes.data() + data_start + begin, need);
    out.tensors[name] = t;
    expected_end = std::max(expected_end, end);
  }
  MT_CHECK(expected_end == data_bytes, "checkpoint file '", path, "' has ", data_bytes - expected_end,
           " bytes after its last tensor: it is damaged");
  out.checksum = checksum64(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return out;
}

}  // namespace mt::train
