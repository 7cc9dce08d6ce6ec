// Where a tensor's memory lives. The CUDA device is part of the design from the start; its
// allocator and kernels register themselves when the CUDA backend is built.
#pragma once

#include <string>

#include "runtime/dtype.h"

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

// This process's rank among the processes of its node, as the launcher tells it
// (OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID, MV2_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID,
// LOCAL_RANK); 0 without a launcher. A process uses GPU (local rank mod visible GPUs), which
// Device::cuda() then names (index 0 = "this process's GPU"); more ranks than GPUs on a node
// share them, and then the job communicates through MPI rather than NCCL.
int local_rank_from_launcher();

// Device queries, in every build (without the CUDA backend: no GPU) and without a CUDA header.
// The GPUs this process sees: 0 without the CUDA backend, a GPU or its driver. (The host-emulated
// device, runtime/emulated_cuda.h, is not a GPU and is not counted.)
int cuda_device_count();
// The GPU this process uses (what Device::cuda() names): local rank mod cuda_device_count();
// 0 without GPUs.
int selected_cuda_device();
// The memory of this process's GPU in bytes (its total, from the driver); 0 without one.
int64_t cuda_device_memory();
// The processes of this node, as the launcher tells it (OMPI_COMM_WORLD_LOCAL_SIZE,
// MPI_LOCALNRANKS, MV2_COMM_WORLD_LOCAL_SIZE, SLURM_NTASKS_PER_NODE, LOCAL_WORLD_SIZE);
// `fallback` without a launcher that says.
int local_size_from_launcher(int fallback);
// The dense peak in TFLOP/s of `device` for GEMMs whose operands are `compute` (bf16/f16: tensor
// cores; f32 without TF32), from the GPU's name and NVIDIA's datasheets, for the MFU in the
// training log; 0 when unknown (the CPU, the emulated device, a GPU not in the table).
double device_peak_tflops(Device device, DType compute);

}  // namespace mt
