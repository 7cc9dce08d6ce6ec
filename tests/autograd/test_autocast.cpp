// Mixed precision (autograd/autocast.h): ag::linear under an Autocast scope equals the f64
// linear of the rounded operands (forward, and backward with a rounded upstream gradient); the
// registry's 16-bit weight copy is used and follows the f32 masters; the scope nests and ends.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>

#include "autograd/autocast.h"
#include "autograd/ops.h"
#include "autograd/tape.h"
#include "runtime/cpu/gemm_bf16.h"
#include "runtime/ops.h"
#include "test_util.h"

using namespace mt;

namespace {
// t rounded to `lo` and widened to f64 (the exact value a 16-bit GEMM sees).
Tensor rounded(const Tensor& t, DType lo) {
  return t.to(lo).to(DType::F64);
}
}  // namespace

TEST_CASE("linear under autocast equals the f64 linear of rounded operands", "[autograd][precision]") {
  for (DType lo : {DType::BF16, DType::F16}) {
    DYNAMIC_SECTION(dtype_name(lo)) {
      ParameterRegistry params;
      Variable w = params.add("w", testutil::random({6, 10}, DType::F32, 1));
      Variable b = params.add("b", testutil::random({6}, DType::F32, 2), ParamTags::no_decay());
      params.pack();
      Variable x(testutil::random({4, 10}, DType::F32, 3), true);
      Tensor dy = testutil::random({4, 6}, DType::F32, 4);

      Variable y;
      {
        ag::Autocast scope(lo, &params);
        CHECK(ag::autocast_dtype() == lo);
        y = ag::linear(x, w, b);
        current_tape().backward(y, &dy);
      }
      CHECK(ag::autocast_dtype() == DType::F32);
      CHECK(y.dtype() == DType::F32);

      // reference in f64 from the rounded values
      Tensor xr = rounded(x.value(), lo), wr = rounded(w.value(), lo), dyr = rounded(dy, lo);
      Tensor yref = Tensor::zeros({4, 6}, DType::F64);
      ops::matmul(xr, false, wr, true, yref);
      std::vector<double> yv = y.value().to_double_vector(), yr = yref.to_double_vector(),
                          bv = b.value().to_double_vector();
      for (size_t i = 0; i < yv.size(); ++i) yr[i] += bv[i % 6];
      CHECK(testutil::max_abs_diff(yv, yr) < 1e-5);

      Tensor dxref = ops::matmul(dyr, false, wr, false), dwref = ops::matmul(dyr, true, xr, false);
      CHECK(testutil::max_abs_diff(x.grad().to_double_vector(), dxref.to_double_vector()) < 1e-5);
      CHECK(testutil::max_abs_diff(w.grad().to_double_vector(), dwref.to_double_vector()) < 1e-5);
      // the bias gradient sums the unrounded upstream gradient in f32
      std::vector<double> dyv = dy.to_double_vector(), db(6, 0.0);
      for (size_t i = 0; i < dyv.size(); ++i) db[i % 6] += dyv[i];
      CHECK(testutil::max_abs_diff(b.grad().to_double_vector(), db) < 1e-5);
      // and the result really differs from the f32 linear (the rounding happened)
      Tensor y32 = ops::matmul(x.value(), false, w.value(), true);
      std::vector<double> y32v = y32.to_double_vector();
      for (size_t i = 0; i < y32v.size(); ++i) y32v[i] += bv[i % 6];
      CHECK(testutil::max_abs_diff(yv, y32v) > 1e-6);
    }
  }
}

// Where the CPU's GEMMs widen 16-bit operands (fp16; bf16 without bf16 units), the operands are
// rounded and held in f32 (ops::rounded_operand_dtype): the registry's weight copy, the saved input
// and dy, so no GEMM widens anything. The gradients equal, bit for bit, the 16-bit GEMMs that
// widen inside (the same f32 values reach the same SGEMM).
TEST_CASE("where the GEMMs widen 16-bit operands, a linear's are held rounded in f32: the same bits",
          "[autograd][precision]") {
  const cpu::Bf16GemmPath chosen = cpu::bf16_gemm_path();
  CHECK(ops::gemm_widens(DType::F16, Device::cpu()));
  CHECK_FALSE(ops::gemm_widens(DType::F32, Device::cpu()));
  cpu::set_bf16_gemm_path(cpu::Bf16GemmPath::Widened);
  CHECK(ops::gemm_widens(DType::BF16, Device::cpu()));
  for (DType lo : {DType::BF16, DType::F16}) {
    DYNAMIC_SECTION(dtype_name(lo)) {
      CHECK(ops::rounded_operand_dtype(lo, Device::cpu()) == DType::F32);
      ParameterRegistry params;
      Variable w = params.add("w", testutil::random({96, 80}, DType::F32, 1));
      params.pack();
      Variable x(testutil::random({70, 80}, DType::F32, 3), true);
      Tensor dy = testutil::random({70, 96}, DType::F32, 4);
      Tensor y;
      {
        ag::Autocast scope(lo, &params);
        std::optional<Tensor> copy = params.half_copy_of(w.value(), lo);
        REQUIRE(copy);
        CHECK(copy->dtype() == DType::F32);
        CHECK(copy->to_double_vector() == rounded(w.value(), lo).to_double_vector());
        Variable out = ag::linear(x, w, Variable());
        y = out.value();
        current_tape().backward(out, &dy);
      }
      Tensor dyl = dy.to(lo), wl = w.value().to(lo), xl = x.value().to(lo);
      CHECK(y.to_double_vector() == ops::matmul(xl, false, wl, true).to_double_vector());
      Tensor dx = ops::matmul(dyl, false, wl, false), dw = ops::matmul(dyl, true, xl, false);
      CHECK(x.grad().to_double_vector() == dx.to_double_vector());
      CHECK(w.grad().to_double_vector() == dw.to_double_vector());
    }
  }
  cpu::set_bf16_gemm_path(chosen);
  if (chosen == cpu::Bf16GemmPath::OneDnn) {
    CHECK_FALSE(ops::gemm_widens(DType::BF16, Device::cpu()));
    CHECK(ops::rounded_operand_dtype(DType::BF16, Device::cpu()) == DType::BF16);
  }
}

TEST_CASE("the registry's 16-bit weight copy follows the masters when a scope opens", "[autograd][precision]") {
  ParameterRegistry params;
  Variable w = params.add("w", testutil::random({3, 5}, DType::F32, 7));
  params.pack();
  {
    ag::Autocast scope(DType::BF16, &params);
    std::optional<Tensor> copy = params.half_copy_of(w.value(), DType::BF16);
    REQUIRE(copy);
    CHECK(copy->dtype() == DType::BF16);
    CHECK(copy->shape() == w.shape());
    CHECK(testutil::max_abs_diff(copy->to_double_vector(), rounded(w.value(), DType::BF16).to_double_vector()) == 0);
    CHECK(ag::autocast_operand(w.value(), DType::BF16).raw() == copy->raw());          // no new cast per use
    CHECK_FALSE(params.half_copy_of(Tensor::zeros({3, 5}, DType::F32), DType::BF16));  // not a parameter
    CHECK_FALSE(params.half_copy_of(w.value(), DType::F16));                           // no f16 copy exists
  }
  ops::scale_(const_cast<Tensor&>(w.value()), 2.0);  // an "optimizer step" on the master
  ag::Autocast scope(DType::BF16, &params);
  CHECK(testutil::max_abs_diff(params.half_copy_of(w.value(), DType::BF16)->to_double_vector(),
                               rounded(w.value(), DType::BF16).to_double_vector()) == 0);
}

TEST_CASE("FullPrecision suspends autocast, and f64 values are never cast", "[autograd][precision]") {
  ag::Autocast scope(DType::F16);
  {
    ag::FullPrecision fp32;
    CHECK(ag::autocast_dtype() == DType::F32);
    Variable x(testutil::random({2, 3}, DType::F32, 1)), w(testutil::random({4, 3}, DType::F32, 2));
    Tensor ref = ops::matmul(x.value(), false, w.value(), true);
    CHECK(testutil::max_abs_diff(ag::linear(x, w).value().to_double_vector(), ref.to_double_vector()) == 0);
  }
  CHECK(ag::autocast_dtype() == DType::F16);
  Variable x(testutil::random({2, 3}, DType::F64, 1)), w(testutil::random({4, 3}, DType::F64, 2));
  Tensor ref = ops::matmul(x.value(), false, w.value(), true);
  Variable y = ag::linear(x, w);
  CHECK(y.dtype() == DType::F64);
  CHECK(testutil::max_abs_diff(y.value().to_double_vector(), ref.to_double_vector()) == 0);
}

TEST_CASE("the vocabulary cross-entropy stores its gradient rounded for a bias-free linear", "[autograd][precision]") {
  // The kernel: a bf16 / f16 dlogits holds exactly the f32 gradient rounded to it (a masked row too).
  Tensor logits = testutil::random({3, 37}, DType::F32, 21);
  Tensor targets = Tensor::from_vector(std::vector<int64_t>{4, 36, 0}, {3});
  Tensor lse = Tensor::empty({3}, DType::F32), tl = Tensor::empty({3}, DType::F32);
  ops::cross_entropy_forward(logits, targets, lse, tl);
  Tensor dlosses = Tensor::from_vector(std::vector<double>{0.25, 0.0, -0.5}, {3}).to(DType::F32);
  Tensor full = Tensor::zeros({3, 37}, DType::F32);
  ops::cross_entropy_backward(logits, targets, lse, dlosses, full);
  for (DType lo : {DType::BF16, DType::F16}) {
    Tensor stored = Tensor::empty({3, 37}, lo);
    ops::cross_entropy_backward(logits, targets, lse, dlosses, stored, {}, false);
    CHECK(stored.to(DType::F64).to_double_vector() == full.to(lo).to(DType::F64).to_double_vector());
    CHECK_THROWS_WITH(ops::cross_entropy_backward(logits, targets, lse, dlosses, stored, {}, true),
                      Catch::Contains("only written (accumulate false)"));
  }
  // Through autograd: logits = linear(x, w) without bias under autocast, then cross-entropy, then
  // (second case) a second reader of the logits adding to their gradient after the first write.
  for (bool second_reader : {false, true}) {
    DYNAMIC_SECTION("second reader " << second_reader) {
      Tensor xv = testutil::random({5, 8}, DType::F32, 22), wv = testutil::random({37, 8}, DType::F32, 23);
      Tensor tgt = Tensor::from_vector(std::vector<int64_t>{1, 2, 3, 30, 36}, {5});
      auto grads = [&](bool round_early) {
        Variable x(xv.clone(), true), w(wv.clone(), true);
        ag::Autocast scope(DType::BF16);
        Variable logit = ag::linear(x, w);
        if (!round_early) logit.grad_slot().set_rounded_reader(DType::F32);  // as before: f32 dlogits
        Variable loss = ag::cross_entropy(logit, tgt);
        if (second_reader) loss = ag::add(ag::scale(ag::cross_entropy(logit, tgt), 0.5), loss);
        current_tape().backward(loss, nullptr);
        return std::make_pair(x.grad().to_double_vector(), w.grad().to_double_vector());
      };
      auto [dx_early, dw_early] = grads(true);
      auto [dx_f32, dw_f32] = grads(false);
      if (!second_reader) {  // the same bits: rounding at the store or at the GEMM is one rounding
        CHECK(dx_early == dx_f32);
        CHECK(dw_early == dw_f32);
      } else {  // the first contribution rounded, then widened and added: within bf16's rounding
        for (size_t i = 0; i < dw_f32.size(); ++i) CHECK(dw_early[i] == Approx(dw_f32[i]).margin(1e-3));
      }
    }
  }
}

TEST_CASE("the cross-entropy's gradient made with its forward equals the backward's", "[autograd][precision]") {
  // expected_dout: the logits' gradient is made in one pass with the forward and taken when the
  // backward brings that gradient; another gradient recomputes. Both give the bits of the plain
  // backward, in f32 and (a bias-free linear under autocast) stored rounded to bf16. Written over
  // the logits (overwrite_logits, f32): the same bits when taken; another gradient scales it.
  // Where the GEMMs widen bf16 (`widened`), the rounded gradient is held in f32 and written over
  // the logits too: taken, the same bits; at another seed, scaled and rounded again by its reader.
  Tensor xv = testutil::random({6, 8}, DType::F32, 31), wv = testutil::random({41, 8}, DType::F32, 32);
  Tensor tgt = Tensor::from_vector(std::vector<int64_t>{0, 5, 40, 7, 7, 12}, {6});
  Tensor mask = Tensor::from_vector(std::vector<double>{1, 1, 0, 1, 1, 1}, {6}).to(DType::F32);
  const cpu::Bf16GemmPath chosen = cpu::bf16_gemm_path();
  for (auto [lo, widened] : {std::pair{DType::F32, false}, {DType::BF16, false}, {DType::BF16, true}}) {
    for (double seed : {0.25, 0.5, 0.3}) {
      DYNAMIC_SECTION(dtype_name(lo) << (widened ? " widened" : "") << " seed " << seed) {
        cpu::set_bf16_gemm_path(widened ? cpu::Bf16GemmPath::Widened : chosen);
        auto grads = [&](double expected, bool overwrite = false) {
          Variable x(xv.clone(), true), w(wv.clone(), true);
          ag::Autocast scope(lo);
          Variable loss = ag::cross_entropy(ag::linear(x, w), tgt, mask, {}, {}, expected, overwrite);
          Tensor s = Tensor::scalar(seed, DType::F32);
          current_tape().backward(loss, &s);
          return std::make_tuple(loss.value().item(), x.grad().to_double_vector(), w.grad().to_double_vector());
        };
        auto [loss_plain, dx_plain, dw_plain] = grads(0.0);
        auto [loss_ahead, dx_ahead, dw_ahead] = grads(0.25);  // taken at seed 0.25, recomputed at 0.5
        CHECK(loss_ahead == loss_plain);
        CHECK(dx_ahead == dx_plain);
        CHECK(dw_ahead == dw_plain);
        auto [loss_over, dx_over, dw_over] = grads(0.25, true);
        CHECK(loss_over == loss_plain);
        if (seed != 0.3) {
          // at seed 0.5 the gradient made for 0.25 doubled: exact, a power of two (rounded too)
          CHECK(dx_over == dx_plain);
          CHECK(dw_over == dw_plain);
        } else {  // scaled by 1.2 (and, made rounded, rounded again): within f32's or bf16's rounding
          double tol = lo == DType::F32 ? 1e-6 : 1e-2;  // of the largest entry (sums of rounded terms)
          auto largest = [](const std::vector<double>& g) {
            double m = 0;
            for (double e : g) m = std::max(m, std::abs(e));
            return m;
          };
          CHECK(testutil::max_abs_diff(dx_over, dx_plain) <= tol * largest(dx_plain));
          CHECK(testutil::max_abs_diff(dw_over, dw_plain) <= tol * largest(dw_plain));
        }
        cpu::set_bf16_gemm_path(chosen);
      }
    }
  }
}
