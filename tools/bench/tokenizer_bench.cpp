// `moetrain bench tokenizer`: GPT-2 BPE speed on Tiny Shakespeare, one core (first pass with an
// empty piece cache, then warm), and `preprocess` throughput with 1 worker and with every core.
#include <omp.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/gpt2_tokenizer.h"
#include "data/preprocess.h"
#include "runtime/assets.h"
#include "runtime/error.h"
#include "tools/bench/ops_bench.h"
#include "tools/bench/report.h"
#include "tools/bench/timer.h"

namespace mt::bench {

int run_tokenizer_bench(const BenchOptions& opt) {
  Reporter rep("tokenizer", opt.json);
  std::string path = asset_path("tinyshakespeare/input.txt");
  std::ifstream in(path, std::ios::binary);
  MT_CHECK(in, "cannot read '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  double mb = double(text.size()) / 1e6;
  if (!opt.json) std::printf("moetrain bench tokenizer: %s (%.2f MB)\n", path.c_str(), mb);
  rep.header();

  data::Gpt2Tokenizer tok(data::Gpt2Tokenizer::default_vocab_file(), data::Gpt2Tokenizer::default_merge_file());
  // A fresh tokenizer object per cold run: the piece cache is per tokenizer and thread.
  double t0 = now_seconds();
  size_t n_tokens = tok.encode(text).size();
  double cold = now_seconds() - t0;
  rep.line("encode_1core_cold", mb / cold, "MB/s", -1, std::to_string(n_tokens) + " tokens, empty piece cache");
  double warm = time_per_call([&] { tok.encode(text); }, opt.quick ? 0.2 : 1.0, opt.quick ? 1 : 3);
  rep.line("encode_1core_warm", mb / warm, "MB/s", -1, "piece cache filled");

  // preprocess: the text as JSONL, one paragraph per document.
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("moetrain_bench_tokenizer_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string corpus = (dir / "corpus.jsonl").string();
  {
    std::ofstream out(corpus, std::ios::binary);
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find("\n\n", start);
      end = end == std::string::npos ? text.size() : end + 2;
      out << nlohmann::json{{"text", text.substr(start, end - start)}}.dump() << "\n";
      start = end;
    }
  }
  int cores = omp_get_num_procs();
  double seconds[2] = {0, 0};
  int worker_counts[2] = {1, cores};
  for (int k = 0; k < 2; ++k) {
    data::PreprocessOptions p;
    p.inputs = {corpus};
    p.output_prefix = (dir / ("out" + std::to_string(k))).string();
    p.append_eod = true;
    p.workers = worker_counts[k];
    data::Gpt2Tokenizer fresh(data::Gpt2Tokenizer::default_vocab_file(), data::Gpt2Tokenizer::default_merge_file());
    double s = now_seconds();
    data::preprocess(fresh, p);
    seconds[k] = now_seconds() - s;
    rep.line("preprocess_" + std::to_string(worker_counts[k]) + "_workers", mb / seconds[k], "MB/s",
             k == 0 ? -1 : seconds[0] / seconds[k], k == 0 ? "" : "ratio = speed-up over 1 worker");
  }
  fs::remove_all(dir);
  return 0;
}

}  // namespace mt::bench
