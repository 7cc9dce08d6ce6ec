// Where a tensor's memory lives. The CUDA device is part of the design from the start; its
// allocator and kernels register themselves when the CUDA backend is built.
#pragma once

#include <string>

namespace mt {

enum class DeviceType : unsigned char { CPU = 0, CUDA = 1 };
constexpr int kNumDeviceTypes = 2;

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device&) const = default;
  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
  static Device cpu() { return {}; }
  static Device cuda(int index = 0) { return {DeviceType::CUDA, index}; }
};

}  // namespace mt
