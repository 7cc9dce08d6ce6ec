// The host-emulated CUDA device (runtime/emulated_cuda.h): device tensors compute what the CPU
// computes, and host code touching their memory outside a kernel call is an error.
#include <catch2/catch.hpp>

#include "runtime/emulated_cuda.h"
#include "runtime/ops.h"
#include "test_util.h"

using namespace mt;

TEST_CASE("the emulated device refuses host access outside kernels and computes as the CPU", "[runtime][emulated]") {
  emulate_cuda_on_host();
  REQUIRE(cuda_emulated());
  Tensor a = testutil::random({3, 4}, DType::F32, 1), b = testutil::random({4, 2}, DType::F32, 2);
  Tensor da = a.to(Device::cuda()), db = b.to(Device::cuda());
  REQUIRE(da.device().is_cuda());
  CHECK_THROWS_WITH(da.data<float>(), Catch::Contains("outside a kernel call"));
  CHECK_THROWS_WITH(da.raw(), Catch::Contains("copy it with .to(Device::cpu()) first"));
  Tensor dc = ops::matmul(da, false, db, false);  // a kernel call: allowed
  CHECK(dc.device().is_cuda());
  CHECK(dc.to_double_vector() == ops::matmul(a, false, b, false).to_double_vector());
  CHECK(da.address() != nullptr);  // comparing addresses is not an access
  CHECK_THROWS_WITH(ops::matmul(a, false, db, false), Catch::Contains("one device"));
}
