#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/tensor.h"
#include "tools/bench/report.h"

namespace mt::bench {

struct BenchOptions {
  bool json = false;
  bool quick = false;
  bool profile = false;  // bench train: time per kernel (runtime/kernel_profile.h)
  // bench ops: the groups of rows to run (kOpsGroups), empty for all; the SGEMM reference and
  // cpu_features always run
  std::vector<std::string> only;
};

// bench ops' groups of rows, for --only: gemm (f32 matmuls), bf16 (the bf16 reference and GEMMs),
// attention, elementwise (layernorm, GELU, softmax), embedding, cross_entropy.
extern const std::vector<std::string> kOpsGroups;
// The groups of an --only value ("attention,bf16"); throws on a missing value (empty, or the next
// flag) and, naming the known groups, on an unknown one.
std::vector<std::string> parse_ops_groups(const std::string& value);

int run_ops_bench(const BenchOptions& opt);
int run_tokenizer_bench(const BenchOptions& opt);
int run_comm_bench(const BenchOptions& opt);
int run_eval_bench(const BenchOptions& opt, const std::string& config_path, const std::vector<std::string>& overrides,
                   const std::string& task_data);
// `bench compare`: a suite run by this build and another in alternation (compare_bench.cpp); args:
// everything after "compare".
int run_compare_bench(const std::vector<std::string>& args);
int run_train_bench(const BenchOptions& opt, const std::string& config_path, const std::vector<std::string>& overrides,
                    int64_t iters);

// C = A B by raw cblas_sgemm (row-major f32 [m,k] x [k,n]): the machine's SGEMM, the CPU reference
// of every ratio.
void raw_sgemm(const Tensor& a, const Tensor& b, Tensor& c);

// The row "cpu_features": the CPU's model name, its AVX2 / AVX-512 / AMX flags, the bf16 units in
// use (runtime/cpu/cpu_features.h) and the bf16 GEMM path; value: the OpenMP threads.
void report_cpu_features(const Reporter& rep);
// The machine's bf16 GEMM reference, row "bf16_gemm_raw_<size>": a plain size^3 bf16 x bf16 -> f32
// matmul on the library of the bf16 path in use (oneDNN's primitive called directly; on the widened
// path, ops::matmul's SGEMM). Returns its GFLOP/s.
double report_bf16_gemm_reference(const Reporter& rep, int64_t size = 1024, double target_seconds = 0.2);

}  // namespace mt::bench
