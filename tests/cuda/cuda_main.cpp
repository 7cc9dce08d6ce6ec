// The CUDA tests' program: without a visible GPU it runs nothing and exits 77, which CTest
// reports as "skipped" (with this message), never as passed.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstdio>

#include "runtime/device.h"

int main(int argc, char** argv) {
  if (mt::cuda_device_count() == 0) {
    std::printf("SKIPPED: no CUDA device visible to this process; the CUDA tests need a GPU (tools/gpu-check.sh)\n");
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
