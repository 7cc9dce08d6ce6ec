#include "runtime/device.h"

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <string>

namespace mt {

int local_rank_from_launcher() {
  for (const char* var :
       {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "MV2_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK"}) {
    const char* v = std::getenv(var);
    if (!v || !*v) continue;
    try {
      return std::max(0, std::stoi(v));
    } catch (const std::exception&) {
    }
  }
  return 0;
}

#if !MOETRAIN_HAVE_CUDA
// A build without the CUDA backend sees no GPU (with it: runtime/cuda/device.cu).
int cuda_device_count() {
  return 0;
}
int selected_cuda_device() {
  return 0;
}
double device_peak_tflops(Device, DType) {
  return 0.0;
}
#endif

}  // namespace mt
