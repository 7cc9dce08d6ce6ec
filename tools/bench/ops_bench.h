#pragma once

namespace mt::bench {

struct BenchOptions {
  bool json = false;
  bool quick = false;
};

int run_ops_bench(const BenchOptions& opt);
int run_tokenizer_bench(const BenchOptions& opt);

}  // namespace mt::bench
