#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mt::bench {

struct BenchOptions {
  bool json = false;
  bool quick = false;
};

int run_ops_bench(const BenchOptions& opt);
int run_tokenizer_bench(const BenchOptions& opt);
int run_comm_bench(const BenchOptions& opt);
int run_eval_bench(const BenchOptions& opt, const std::string& config_path, const std::vector<std::string>& overrides,
                   const std::string& task_data);
int run_train_bench(const BenchOptions& opt, const std::string& config_path, const std::vector<std::string>& overrides,
                    int64_t iters);

}  // namespace mt::bench
