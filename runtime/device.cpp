#include "runtime/device.h"

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <initializer_list>
#include <string>

namespace mt {

namespace {

// The first of `vars` the launcher set to a number, else `fallback`.
int launcher_number(std::initializer_list<const char*> vars, int fallback) {
  for (const char* var : vars) {
    const char* v = std::getenv(var);
    if (!v || !*v) continue;
    try {
      return std::max(0, std::stoi(v));
    } catch (const std::exception&) {
    }
  }
  return fallback;
}

}  // namespace

int local_rank_from_launcher() {
  return launcher_number(
      {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "MV2_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK"}, 0);
}

int local_size_from_launcher(int fallback) {
  return launcher_number({"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "MV2_COMM_WORLD_LOCAL_SIZE",
                          "SLURM_NTASKS_PER_NODE", "LOCAL_WORLD_SIZE"},
                         fallback);
}

#if !MOETRAIN_HAVE_CUDA
// A build without the CUDA backend sees no GPU (with it: runtime/cuda/device.cu).
int cuda_device_count() {
  return 0;
}
int selected_cuda_device() {
  return 0;
}
int64_t cuda_device_memory() {
  return 0;
}
double device_peak_tflops(Device, DType) {
  return 0.0;
}
#endif

}  // namespace mt
