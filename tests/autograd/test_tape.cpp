// Tape semantics: reverse replay, accumulation, no-grad scope, clearing, dropout determinism.
#include <omp.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <thread>

#include "autograd/ops.h"
#include "runtime/allocator.h"
#include "runtime/cpu/stream_store.h"
#include "runtime/ops.h"
#include "runtime/random.h"
#include "test_util.h"

using namespace mt;

TEST_CASE("backward accumulates through shared inputs and across calls", "[autograd][tape]") {
  Variable x(Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}), true);
  Variable y = ag::add(ag::scale(x, 2.0), ag::scale(x, 3.0));  // y = 5x
  current_tape().backward(y, nullptr);
  REQUIRE(x.grad().to_double_vector() == std::vector<double>{5, 5, 5});
  REQUIRE(current_tape().size() == 0);
  Variable z = ag::scale(x, -1.0);
  current_tape().backward(z, nullptr);  // gradients accumulate until zeroed
  REQUIRE(x.grad().to_double_vector() == std::vector<double>{4, 4, 4});
}

TEST_CASE("no-grad scope records nothing", "[autograd][tape]") {
  Variable x(Tensor::from_vector(std::vector<double>{1, 2}, {2}), true);
  {
    NoGradGuard guard;
    Variable y = ag::scale(x, 2.0);
    REQUIRE_FALSE(y.requires_grad());
    REQUIRE(current_tape().size() == 0);
    REQUIRE_THROWS_WITH(current_tape().backward(y, nullptr), Catch::Contains("does not require a gradient"));
  }
  Variable y = ag::scale(x, 2.0);
  REQUIRE(y.requires_grad());
  REQUIRE(current_tape().size() == 1);
  current_tape().clear();
}

TEST_CASE("inputs that do not require grad get none and cost no backward", "[autograd][tape]") {
  Variable a(Tensor::from_vector(std::vector<double>{1, 2}, {2}), false);
  Variable b(Tensor::from_vector(std::vector<double>{3, 4}, {2}), true);
  Variable c = ag::add(a, b);
  current_tape().backward(c, nullptr);
  REQUIRE_FALSE(a.grad().defined());
  REQUIRE(b.grad().to_double_vector() == std::vector<double>{1, 1});
  Variable d = ag::add(a, a);  // nothing requires grad: nothing recorded
  REQUIRE(current_tape().size() == 0);
  REQUIRE_FALSE(d.requires_grad());
}

TEST_CASE("dropout is reproducible from its key and drops about p", "[autograd][dropout]") {
  Tensor ones = Tensor::full({100000}, 1.0, DType::F32);
  Variable x(ones, false);
  RngKey key = rng_key(7, 100, 3, 0);
  Variable y1 = ag::dropout(x, 0.25, key), y2 = ag::dropout(x, 0.25, key);
  std::vector<double> a = y1.value().to_double_vector(), b = y2.value().to_double_vector();
  REQUIRE(a == b);
  int64_t zeros = 0;
  for (double v : a) {
    if (v == 0.0)
      ++zeros;
    else
      REQUIRE(v == Approx(1.0 / 0.75));
  }
  REQUIRE(double(zeros) / double(a.size()) == Approx(0.25).margin(0.01));
  std::vector<double> c = ag::dropout(x, 0.25, rng_key(7, 101, 3, 0)).value().to_double_vector();
  REQUIRE(c != a);
  REQUIRE(ag::dropout(x, 0.0, key).same(x));  // p = 0: identity, no copy
}

TEST_CASE("deterministic reductions do not depend on the thread count", "[autograd][determinism]") {
  // Large enough that the kernels split the work; compare 1 thread with 3.
  Tensor x = testutil::random({5000, 67}, DType::F32, 3);
  Tensor w = testutil::random({67}, DType::F32, 4), b = testutil::random({67}, DType::F32, 5);
  Tensor mean = Tensor::empty({5000}, DType::F32), rstd = Tensor::empty({5000}, DType::F32);
  Tensor y = Tensor::empty({5000, 67}, DType::F32);
  ops::layernorm_forward(x, w, b, 1e-5, y, mean, rstd);
  std::vector<double> results[2];
  int threads = omp_get_max_threads();
  for (int run = 0; run < 2; ++run) {
    omp_set_num_threads(run == 0 ? 1 : 3);
    Tensor bias_grad = Tensor::zeros({67}, DType::F32), dw = Tensor::zeros({67}, DType::F32);
    Tensor db = Tensor::zeros({67}, DType::F32);
    ops::sum_rows(x, bias_grad);
    ops::layernorm_backward(x, x, w, mean, rstd, nullptr, &dw, &db);
    results[run] = bias_grad.to_double_vector();
    for (double v : dw.to_double_vector()) results[run].push_back(v);
    for (double v : db.to_double_vector()) results[run].push_back(v);
    results[run].push_back(ops::reduce(ReduceOp::SumSquares, x));
  }
  omp_set_num_threads(threads);
  REQUIRE(results[0] == results[1]);
}

TEST_CASE("two forwards then two backwards accumulate both gradients", "[autograd][tape]") {
  Variable w(Tensor::from_vector(std::vector<double>{1, 1}, {2}), true);
  Variable l1 = ag::scale(w, 2.0), l2 = ag::scale(w, 3.0);
  current_tape().backward(l1);
  current_tape().backward(l2);  // l2's function was kept for it, not dropped by the first backward
  REQUIRE(w.grad().to_double_vector() == std::vector<double>{5, 5});
  REQUIRE(current_tape().size() == 0);
}

TEST_CASE("a backward through an already released graph is an error, not a silent loss", "[autograd][tape]") {
  Variable w(Tensor::from_vector(std::vector<double>{1}, {1}), true);
  Variable h = ag::scale(w, 2.0);
  Variable l1 = ag::scale(h, 1.0), l2 = ag::scale(h, 1.0);
  current_tape().backward(l1);
  REQUIRE_THROWS_WITH(current_tape().backward(l2), Catch::Contains("already ran"));
  REQUIRE_THROWS_WITH(current_tape().backward(l1), Catch::Contains("already ran"));
  current_tape().clear();
}

TEST_CASE("backward on another thread than the forward is refused", "[autograd][tape]") {
  Variable w(Tensor::from_vector(std::vector<double>{1}, {1}), true);
  Variable l = ag::scale(w, 2.0);
  std::string error;
  std::thread t([&] {
    try {
      current_tape().backward(l);
    } catch (const Error& e) {
      error = e.what();
    }
  });
  t.join();
  REQUIRE_THAT(error, Catch::Contains("another thread"));
  current_tape().clear();
}

TEST_CASE("a throwing backward leaves a clean tape", "[autograd][tape]") {
  Variable w(Tensor::from_vector(std::vector<double>{1}, {1}), true);
  Variable bad(Tensor::from_vector(std::vector<double>{0}, {1}));
  record_op("throws", bad, [](const Tensor&) { throw Error("boom"); });
  REQUIRE_THROWS_WITH(current_tape().backward(bad), Catch::Contains("boom"));
  REQUIRE(current_tape().size() == 0);
  Variable l = ag::scale(w, 4.0);
  current_tape().backward(l);
  REQUIRE(w.grad().to_double_vector() == std::vector<double>{4});
}

TEST_CASE("functions whose outputs were dropped are collected", "[autograd][tape]") {
  Variable w(Tensor::from_vector(std::vector<double>{1}, {1}), true);
  for (int i = 0; i < 10000; ++i) Variable unused = ag::scale(w, 2.0);
  REQUIRE(current_tape().size() <= 2048);
  // a linear's backward watches its own output's gradient slot (GradSlot::RoundedGradWatch) without
  // keeping it alive: dropped, its function is collected too
  Variable x(Tensor::full({2, 3}, 0.5, DType::F32), true), m(Tensor::full({4, 3}, 0.25, DType::F32), true);
  for (int i = 0; i < 10000; ++i) Variable unused = ag::linear(x, m);
  REQUIRE(current_tape().size() <= 2048);
  current_tape().clear();
}

TEST_CASE("backward functions do not keep inputs they do not need alive", "[autograd][tape][memory]") {
  Allocator& alloc = allocator_for(DeviceType::CPU);
  Variable x(Tensor::zeros({1 << 18}, DType::F32), true);  // 1 MiB
  size_t before = alloc.stats().live_bytes;
  Variable y = x;
  for (int i = 0; i < 10; ++i) y = ag::dropout(ag::scale(y, 1.5), 0.1, rng_key(1, uint64_t(i), 0, 0));
  // Only the final output is held: neither scale nor dropout needs its input's value.
  REQUIRE(alloc.stats().live_bytes - before <= 2 * x.value().nbytes());
  current_tape().backward(y);
  REQUIRE(x.grad().defined());
}

TEST_CASE("undefined Variables give an error naming the op", "[autograd][errors]") {
  Variable x(Tensor::zeros({2, 3}, DType::F32), true), w(Tensor::full({3}, 1.0, DType::F32), true);
  REQUIRE_THROWS_WITH(ag::layernorm(x, w, Variable()), Catch::Contains("layernorm") && Catch::Contains("bias"));
  REQUIRE_THROWS_WITH(ag::linear(Variable(), w), Catch::Contains("linear") && Catch::Contains("x"));
}

TEST_CASE("a first gradient is written whole, later ones added", "[autograd][tape]") {
  // The kernel: accumulate false writes every element of an uninitialised (here NaN) buffer, the
  // masked row (dloss 0) included, and equals accumulating into zeros.
  Tensor logits = rand_uniform({3, 7}, DType::F32, rng_key(11, 0, 0, 0), -2, 2);
  Tensor targets = Tensor::from_vector(std::vector<int64_t>{1, 6, 0}, {3});
  Tensor lse = Tensor::empty({3}, DType::F32), tl = Tensor::empty({3}, DType::F32);
  ops::cross_entropy_forward(logits, targets, lse, tl);
  Tensor dlosses = Tensor::from_vector(std::vector<double>{0.5, 0.0, -1.5}, {3}).to(DType::F32);
  Tensor written = Tensor::full({3, 7}, std::nan(""), DType::F32);
  Tensor added = Tensor::zeros({3, 7}, DType::F32);
  ops::cross_entropy_backward(logits, targets, lse, dlosses, written, {}, false);
  ops::cross_entropy_backward(logits, targets, lse, dlosses, added, {}, true);
  REQUIRE(written.to_double_vector() == added.to_double_vector());
  // GELU's backward likewise (the attention's: tests/runtime/test_attention_kernel.cpp).
  Tensor gx = rand_uniform({5, 33}, DType::F32, rng_key(14, 0, 0, 0), -3, 3);
  Tensor gdy = rand_uniform({5, 33}, DType::F32, rng_key(15, 0, 0, 0), -1, 1);
  Tensor gwritten = Tensor::full({5, 33}, std::nan(""), DType::F32), gadded = Tensor::zeros({5, 33}, DType::F32);
  ops::gelu_backward(gx, gdy, gwritten, false);
  ops::gelu_backward(gx, gdy, gadded, true);
  REQUIRE(gwritten.to_double_vector() == gadded.to_double_vector());
  // Through the tape: x feeds two linears, so its gradient is written by one and added by the other.
  Tensor xv = rand_uniform({4, 5}, DType::F64, rng_key(12, 0, 0, 0), -1, 1);
  Tensor wv = rand_uniform({3, 5}, DType::F64, rng_key(13, 0, 0, 0), -1, 1);
  Variable x(xv, true), w(wv, true);
  Variable y = ag::add(ag::linear(x, w), ag::scale(ag::linear(x, w), 2.0));  // y = 3 x w^T
  current_tape().backward(y, nullptr);                                       // dy = ones
  std::vector<double> dx = x.grad().to_double_vector(), dw = w.grad().to_double_vector();
  std::vector<double> xs = xv.to_double_vector(), ws = wv.to_double_vector();
  for (int i = 0; i < 4; ++i)
    for (int k = 0; k < 5; ++k) {
      double want = 0;
      for (int o = 0; o < 3; ++o) want += 3 * ws[o * 5 + k];
      REQUIRE(dx[i * 5 + k] == Approx(want).margin(1e-12));
    }
  for (int o = 0; o < 3; ++o)
    for (int k = 0; k < 5; ++k) {
      double want = 0;
      for (int i = 0; i < 4; ++i) want += 3 * xs[i * 5 + k];
      REQUIRE(dw[o * 5 + k] == Approx(want).margin(1e-12));
    }
}

TEST_CASE("the fused cross-entropy kernel equals the forward then the backward", "[autograd][tape]") {
  // lse, target logits and the written gradient, bit for bit, f64 and f32, a masked row included
  for (DType dt : {DType::F64, DType::F32}) {
    Tensor logits = rand_uniform({4, 19}, dt, rng_key(14, 0, 0, 0), -3, 3);
    Tensor targets = Tensor::from_vector(std::vector<int64_t>{18, 0, 5, 5}, {4});
    Tensor dlosses = Tensor::from_vector(std::vector<double>{0.25, 0.0, -1.0, 0.125}, {4}).to(dt);
    Tensor lse = Tensor::empty({4}, dt), tl = Tensor::empty({4}, dt), dl = Tensor::full({4, 19}, std::nan(""), dt);
    ops::cross_entropy_forward(logits, targets, lse, tl);
    ops::cross_entropy_backward(logits, targets, lse, dlosses, dl, {}, false);
    Tensor lse2 = Tensor::empty({4}, dt), tl2 = Tensor::empty({4}, dt), dl2 = Tensor::full({4, 19}, std::nan(""), dt);
    ops::cross_entropy_fused(logits, targets, dlosses, lse2, tl2, dl2);
    CHECK(lse2.to_double_vector() == lse.to_double_vector());
    CHECK(tl2.to_double_vector() == tl.to_double_vector());
    CHECK(dl2.to_double_vector() == dl.to_double_vector());
    // written over the logits themselves: the same numbers
    Tensor over = logits.clone(), lse3 = Tensor::empty({4}, dt), tl3 = Tensor::empty({4}, dt);
    ops::cross_entropy_fused(over, targets, dlosses, lse3, tl3, over);
    CHECK(lse3.to_double_vector() == lse.to_double_vector());
    CHECK(tl3.to_double_vector() == tl.to_double_vector());
    CHECK(over.to_double_vector() == dl.to_double_vector());
    // another overlap (not the logits exactly) stays refused
    Tensor shifted = logits.clone().flatten_to_2d();
    CHECK_THROWS_WITH(ops::cross_entropy_backward(shifted, targets, lse, dlosses, shifted, {}, false),
                      Catch::Contains("no in-place use"));
  }
}

TEST_CASE("a 16-bit cross-entropy gradient is the f32 one rounded, bit for bit, at any target position",
          "[autograd][tape]") {
  // f32 logits, bf16/f16 gradient, stored plainly or (larger than the cache) rounded a chunk of
  // 2048 at a time and streamed out (runtime/cpu/stream_store.h); rows of 5003 (the rows' starts unaligned), targets in
  // every chunk and at both ends, a masked row
  int64_t v = 5003;
  Tensor logits = rand_uniform({7, v}, DType::F32, rng_key(15, 0, 0, 0), -6, 6);
  Tensor targets = Tensor::from_vector(std::vector<int64_t>{0, 2047, 2048, 4095, 4096, 5002, 17}, {7});
  Tensor dlosses = Tensor::from_vector(std::vector<float>{0.5f, -0.25f, 1.0f, 0.125f, 2.0f, 0.75f, 0.0f}, {7});
  Tensor lse = Tensor::empty({7}, DType::F32), tl = Tensor::empty({7}, DType::F32);
  Tensor want = Tensor::empty({7, v}, DType::F32);
  ops::cross_entropy_fused(logits, targets, dlosses, lse, tl, want);
  for (size_t streaming_above : {size_t(0), size_t(1)})  // the cache's size (not streamed here); everything streamed
    for (DType lo : {DType::BF16, DType::F16}) {
      cpu::set_streaming_threshold_for_tests(streaming_above);
      Tensor fused = Tensor::full({7, v}, std::nan(""), lo), backward = Tensor::full({7, v}, std::nan(""), lo);
      ops::cross_entropy_fused(logits, targets, dlosses, lse, tl, fused);
      ops::cross_entropy_backward(logits, targets, lse, dlosses, backward, {}, false);
      cpu::set_streaming_threshold_for_tests(0);
      std::vector<double> w = want.to(lo).to_double_vector();
      CHECK(fused.to_double_vector() == w);
      CHECK(backward.to_double_vector() == w);
      // rounded and held in f32 (round_to: for GEMMs that widen lo), beside the logits and over them
      Tensor held = Tensor::full({7, v}, std::nan(""), DType::F32), over = logits.clone();
      Tensor held_backward = Tensor::full({7, v}, std::nan(""), DType::F32);
      ops::cross_entropy_fused(logits, targets, dlosses, lse, tl, held, lo);
      ops::cross_entropy_fused(over, targets, dlosses, lse, tl, over, lo);
      ops::cross_entropy_backward(logits, targets, lse, dlosses, held_backward, {}, false, lo);
      CHECK(held.to_double_vector() == w);
      CHECK(over.to_double_vector() == w);
      CHECK(held_backward.to_double_vector() == w);
      CHECK_THROWS_WITH(ops::cross_entropy_backward(logits, targets, lse, dlosses, held_backward, {}, true, lo),
                        Catch::Contains("only written"));
    }
  // round_to needs an f32 gradient to hold the rounded values
  Tensor half = Tensor::empty({7, v}, DType::BF16);
  CHECK_THROWS_WITH(ops::cross_entropy_fused(logits, targets, dlosses, lse, tl, half, DType::BF16),
                    Catch::Contains("round_to f32, or bf16/f16 with an f32 dlogits"));
}
