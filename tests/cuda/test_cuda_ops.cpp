// The CUDA backend against the CPU backend on the same inputs: every op of the op table
// (tests/autograd/op_cases.cpp) in f32 and f64, forward outputs and the hand-written backward's
// input gradients, plus copies across devices and dtypes. Runs only where a GPU is visible; the
// program reports itself skipped otherwise (tests/cuda/cuda_main.cpp).
#include <catch2/catch.hpp>

#include "autograd/tape.h"
#include "op_cases.h"
#include "runtime/allocator.h"
#include "test_util.h"

using namespace mt;
using testops::OpCase;

namespace {

// The same inputs on the GPU (fresh leaves, same requires_grad).
std::vector<Variable> on_gpu(const std::vector<Variable>& in) {
  std::vector<Variable> out;
  for (const Variable& v : in) out.push_back(Variable(v.value().to(Device::cuda()), v.requires_grad()));
  return out;
}

// ||a - b||_inf relative to b's scale
double rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  return testutil::max_abs_diff(a, b) / std::max(1.0, testutil::max_abs(b));
}

}  // namespace

TEST_CASE("every op on the GPU equals the CPU backend (forward and backward)", "[cuda][ops]") {
  for (const OpCase& c : testops::op_cases()) {
    for (DType dt : {DType::F32, DType::F64}) {
      DYNAMIC_SECTION(c.op << " " << c.shape << " " << dtype_name(dt)) {
        double tol = dt == DType::F32 ? 2e-5 : 1e-11;
        std::vector<Variable> cpu_in = c.inputs(dt), gpu_in = on_gpu(cpu_in);
        Variable cpu_out = c.forward(cpu_in), gpu_out = c.forward(gpu_in);
        REQUIRE(gpu_out.device().is_cuda());
        std::vector<double> want = cpu_out.value().to_double_vector(), got = gpu_out.value().to_double_vector();
        REQUIRE(got.size() == want.size());
        INFO("forward: max relative difference " << rel_diff(got, want));
        REQUIRE(rel_diff(got, want) <= tol);
        // the same upstream gradient into both backwards
        Tensor seed = testutil::random(cpu_out.shape(), dt, 77);
        Tensor gpu_seed = seed.to(Device::cuda());
        current_tape().backward(cpu_out, &seed);
        current_tape().backward(gpu_out, &gpu_seed);
        for (size_t i = 0; i < cpu_in.size(); ++i) {
          if (!cpu_in[i].requires_grad()) continue;
          std::vector<double> g_cpu = cpu_in[i].grad().to_double_vector(), g_gpu = gpu_in[i].grad().to_double_vector();
          INFO("input " << i << " gradient: max relative difference " << rel_diff(g_gpu, g_cpu));
          REQUIRE(rel_diff(g_gpu, g_cpu) <= tol);
        }
        current_tape().clear();
      }
    }
  }
}

TEST_CASE("copies between host and device convert dtypes", "[cuda][copy]") {
  Tensor x = testutil::random({1000, 3}, DType::F32, 5, -100, 100);
  for (DType dt : {DType::F32, DType::F64, DType::BF16}) {
    Tensor on_device = x.to(Device::cuda()).to(dt);  // device-side conversion
    Tensor back = on_device.to(Device::cpu()).to(DType::F32);
    Tensor host_conv = x.to(dt).to(DType::F32);  // the CPU's conversion
    REQUIRE(back.to_double_vector() == host_conv.to_double_vector());
  }
  Tensor ids = testutil::random_ids({7}, 100, 3, DType::I64);
  REQUIRE(ids.to(Device::cuda()).to(Device::cpu()).to_double_vector() == ids.to_double_vector());
  REQUIRE(allocator_for(DeviceType::CUDA).stats().peak_bytes > 0);
}
