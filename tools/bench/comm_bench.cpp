// `mpirun -np N moetrain bench comm`: bus bandwidth of each collective over a range of message
// sizes, as nccl-tests defines it (algorithm bandwidth = bytes / time, scaled by the share of the
// data a rank must move: all_reduce 2(n-1)/n, all_gather / reduce_scatter / all_to_all (n-1)/n,
// broadcast 1). Printed by rank 0; every rank takes part.
#include <algorithm>
#include <cstdio>
#include <vector>

#include "parallel/communicator.h"
#include "tools/bench/ops_bench.h"
#include "tools/bench/report.h"
#include "tools/bench/timer.h"

namespace mt::bench {
namespace {

// Seconds per call of a collective: every rank must make the same number of calls, so the
// repetition count is agreed on (from the slowest rank's first call), and each sample is the
// slowest rank's time.
template <class F>
double collective_seconds(parallel::Communicator& w, F&& call, double target) {
  auto slowest = [&](double s) {
    Tensor t = Tensor::full({1}, s, DType::F64);
    w.all_reduce(t, parallel::ReduceKind::Max);
    return t.item();
  };
  call();  // warm-up
  w.barrier();
  double t0 = now_seconds();
  call();
  int reps = std::max(1, int(target / std::max(slowest(now_seconds() - t0), 1e-7)));
  std::vector<double> samples;
  for (int s = 0; s < 3; ++s) {
    w.barrier();
    double start = now_seconds();
    for (int r = 0; r < reps; ++r) call();
    samples.push_back(slowest((now_seconds() - start) / reps));
  }
  std::sort(samples.begin(), samples.end());
  return samples[1];
}

}  // namespace

int run_comm_bench(const BenchOptions& opt) {
  parallel::Communicator& w = parallel::world();
  int n = w.size();
  Reporter rep("comm", opt.json);
  bool lead = w.rank() == 0;
  if (lead && !opt.json) {
    std::printf("moetrain bench comm: %d ranks over %s (float32 messages)\n", n, w.name().c_str());
    std::fflush(stdout);
  }
  if (lead) rep.header();
  std::vector<int64_t> sizes =
      opt.quick ? std::vector<int64_t>{1 << 10, 1 << 20} : std::vector<int64_t>{1 << 10, 1 << 16, 1 << 20, 1 << 24};
  double factor_reduce = n > 1 ? 2.0 * (n - 1) / n : 0.0, factor_gather = n > 1 ? double(n - 1) / n : 0.0;
  for (int64_t bytes : sizes) {
    int64_t elems = std::max<int64_t>(bytes / 4 / n * n, n);
    Tensor t = Tensor::full({elems}, 1.0, DType::F32), big = Tensor::empty({elems * n}, DType::F32);
    Tensor part = Tensor::empty({elems / n}, DType::F32), a2a = Tensor::empty({elems}, DType::F32);
    auto measure = [&](const char* name, double factor, auto&& call) {
      double s = collective_seconds(w, call, opt.quick ? 0.02 : 0.1);
      double algbw = double(elems) * 4.0 / s / 1e9;
      if (lead)
        rep.line(std::string(name) + "_" + std::to_string(elems * 4) + "B", algbw * factor, "GB/s", -1,
                 "bus bandwidth; " + std::to_string(int64_t(s * 1e6)) + " us per call");
    };
    measure("all_reduce", factor_reduce, [&] { w.all_reduce(t, parallel::ReduceKind::Sum); });
    measure("all_gather", factor_gather, [&] { w.all_gather(t, big); });
    measure("reduce_scatter", factor_gather, [&] { w.reduce_scatter(t, part, parallel::ReduceKind::Sum); });
    measure("all_to_all", factor_gather, [&] { w.all_to_all(t, a2a); });
    measure("broadcast", 1.0, [&] { w.broadcast(t, 0); });
  }
  return 0;
}

}  // namespace mt::bench
