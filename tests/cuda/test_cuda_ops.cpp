// The CUDA backend against the CPU backend on the same inputs: every op of the op table
// (tests/autograd/op_cases.cpp) in f32 and f64, forward outputs and the hand-written backward's
// input gradients, plus copies across devices and dtypes. Runs only where a GPU is visible; the
// program reports itself skipped otherwise (tests/cuda/cuda_main.cpp).
#include <catch2/catch.hpp>

#include "autograd/autocast.h"
#include "autograd/ops.h"
#include "autograd/tape.h"
#include "moe/moe_ops.h"
#include "op_cases.h"
#include "runtime/allocator.h"
#include "runtime/ops.h"
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
  for (DType dt : {DType::F32, DType::F64, DType::BF16, DType::F16}) {
    Tensor on_device = x.to(Device::cuda()).to(dt);  // device-side conversion
    Tensor back = on_device.to(Device::cpu()).to(DType::F32);
    Tensor host_conv = x.to(dt).to(DType::F32);  // the CPU's conversion
    REQUIRE(back.to_double_vector() == host_conv.to_double_vector());
  }
  Tensor ids = testutil::random_ids({7}, 100, 3, DType::I64);
  REQUIRE(ids.to(Device::cuda()).to(Device::cpu()).to_double_vector() == ids.to_double_vector());
  REQUIRE(allocator_for(DeviceType::CUDA).stats().peak_bytes > 0);
}

TEST_CASE("fp16 conversion on the device equals the host's, subnormals and overflow included", "[cuda][copy]") {
  std::vector<float> v = {0.0f, -0.0f, 1.0f, 65504.0f, 65519.0f, 65520.0f, 1e6f, 6.1e-5f, 3e-8f, 4.5e-8f, -1e-7f};
  Tensor x = Tensor::from_vector(v, {int64_t(v.size())});
  std::vector<double> host = x.to(DType::F16).to_double_vector();
  std::vector<double> device = x.to(Device::cuda()).to(DType::F16).to(Device::cpu()).to_double_vector();
  REQUIRE(host == device);
}

TEST_CASE("mixed-precision GEMM and autocast linear on the GPU equal the CPU", "[cuda][precision]") {
  for (DType lo : {DType::BF16, DType::F16}) {
    DYNAMIC_SECTION(dtype_name(lo)) {
      Tensor a = testutil::random({37, 130}, DType::F32, 1).to(lo),
             b = testutil::random({130, 21}, DType::F32, 2).to(lo);
      Tensor want = ops::matmul(a, false, b, false);
      Tensor got = ops::matmul(a.to(Device::cuda()), false, b.to(Device::cuda()), false);
      REQUIRE(got.dtype() == DType::F32);
      REQUIRE(rel_diff(got.to_double_vector(), want.to_double_vector()) < 1e-5);

      Variable x(testutil::random({6, 40}, DType::F32, 3), true), w(testutil::random({12, 40}, DType::F32, 4), true);
      Tensor dy = testutil::random({6, 12}, DType::F32, 5);
      Variable xg(x.value().to(Device::cuda()), true), wg(w.value().to(Device::cuda()), true);
      ag::Autocast scope(lo);
      Variable y = ag::linear(x, w), yg = ag::linear(xg, wg);
      current_tape().backward(y, &dy);
      Tensor dyg = dy.to(Device::cuda());
      current_tape().backward(yg, &dyg);
      REQUIRE(rel_diff(yg.value().to_double_vector(), y.value().to_double_vector()) < 1e-5);
      REQUIRE(rel_diff(xg.grad().to_double_vector(), x.grad().to_double_vector()) < 1e-5);
      REQUIRE(rel_diff(wg.grad().to_double_vector(), w.grad().to_double_vector()) < 1e-5);
    }
  }
}

TEST_CASE("the MoE layer's dispatch, combine and mixing on the GPU equal the CPU", "[cuda][moe]") {
  // a fixed top-2 routing of 5 tokens over 3 experts with one dropped assignment
  moe::Routing r;
  r.tokens = 5, r.experts = 3, r.k = 2, r.capacity = 3;
  r.expert = {0, 1, 2, 0, 1, 2, 0, 1, 0, 2};
  r.slot = {0, 0, 0, 1, 1, 1, 2, 2, -1, 2};
  r.kept = {3, 3, 3};
  for (DType dt : {DType::F32, DType::F64}) {
    DYNAMIC_SECTION(dtype_name(dt)) {
      double tol = dt == DType::F32 ? 2e-5 : 1e-11;
      Tensor xv = testutil::random({5, 24}, dt, 1), wv = testutil::random({5, 2}, dt, 2);
      Tensor cv = testutil::random({5, 2}, dt, 3), dy = testutil::random({5, 24}, dt, 4);
      auto run = [&](Device d, std::vector<std::vector<double>>& results) {
        Variable x(xv.to(d), true), w(wv.to(d), true), c(cv.to(d), true);
        Variable y = moe::scale_rows(moe::combine(moe::dispatch(x, r), w, r), c, 1);
        Tensor seed = dy.to(d);
        current_tape().backward(y, &seed);
        results = {y.value().to_double_vector(), x.grad().to_double_vector(), w.grad().to_double_vector(),
                   c.grad().to_double_vector()};
      };
      std::vector<std::vector<double>> cpu, gpu;
      run(Device::cpu(), cpu);
      run(Device::cuda(), gpu);
      for (size_t i = 0; i < cpu.size(); ++i) REQUIRE(rel_diff(gpu[i], cpu[i]) < tol);
    }
  }
}
