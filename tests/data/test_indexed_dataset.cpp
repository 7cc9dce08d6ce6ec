// Megatron indexed dataset: reading the genuine sample, writing it back byte-identically with
// preprocess, and a clear error (naming the file and what is wrong) for each kind of bad file.
#include <catch2/catch.hpp>

#include "data/indexed_dataset.h"
#include "data/loader.h"
#include "data/preprocess.h"
#include "data_test_util.h"

using namespace mt;
using namespace mt::data;
using namespace datatest;

TEST_CASE("the genuine Megatron sample reads as documented", "[data][indexed]") {
  IndexedDataset d(kSample);
  REQUIRE(d.num_sequences() == 10000);
  REQUIRE(d.doc_idx().size() == 10001);
  REQUIRE(d.dtype() == TokenDType::U16);
  REQUIRE(d.sequence(0) == std::vector<int64_t>{73, 8142, 625, 262, 16931, 3290, 50256});
  REQUIRE(d.sizes()[0] == 7);
  REQUIRE(d.pointers()[1] == 14);
  REQUIRE(d.num_tokens() == 60000);
  std::vector<int64_t> part;
  d.read(0, 2, 3, part);
  REQUIRE(part == std::vector<int64_t>{625, 262, 16931});
  REQUIRE_THROWS_WITH(d.read(0, 5, 3, part), Catch::Contains("tokens [5, 8) of sequence 0"));
  REQUIRE_THROWS_WITH(d.sequence(10000), Catch::Contains("out of range"));
}

TEST_CASE("preprocess reproduces Megatron's output byte for byte, with any worker count", "[data][preprocess]") {
  fs::path dir = fresh_dir("preprocess");
  for (int workers : {1, 2, 3}) {
    PreprocessOptions opt;
    opt.inputs = {kSampleDir + "/my-corpus.json"};
    opt.output_prefix = (dir / ("w" + std::to_string(workers))).string();
    opt.append_eod = true;
    opt.workers = workers;
    opt.batch_documents = 777;  // several rounds, not a multiple of anything
    std::vector<std::string> out = preprocess(gpt2(), opt);
    REQUIRE(out == std::vector<std::string>{opt.output_prefix + "_text_document"});
    REQUIRE(slurp(out[0] + ".bin") == slurp(kSample + ".bin"));
    REQUIRE(slurp(out[0] + ".idx") == slurp(kSample + ".idx"));
  }
  fs::remove_all(dir);
}

TEST_CASE("preprocess reads plain text, one document per file or per line", "[data][preprocess]") {
  fs::path dir = fresh_dir("preprocess_text");
  spit((dir / "a.txt").string(), "The quick brown fox");
  spit((dir / "b.txt").string(), "jumps over the lazy dog\n\nThe quick brown fox\n");
  PreprocessOptions opt;
  opt.inputs = {(dir / "a.txt").string(), (dir / "b.txt").string()};
  opt.format = InputFormat::TextFile;
  opt.output_prefix = (dir / "files").string();
  opt.append_eod = true;
  IndexedDataset files(preprocess(gpt2(), opt)[0]);
  REQUIRE(files.num_sequences() == 2);
  REQUIRE(files.sequence(0) == std::vector<int64_t>{464, 2068, 7586, 21831, 50256});
  opt.format = InputFormat::TextLine;
  opt.output_prefix = (dir / "lines").string();
  IndexedDataset lines(preprocess(gpt2(), opt)[0]);
  // 3 non-empty lines; the empty line is a document boundary without a sequence, as Megatron.
  REQUIRE(lines.num_sequences() == 3);
  REQUIRE(lines.doc_idx().size() == 5);
  REQUIRE(lines.sequence(1) == std::vector<int64_t>{73, 8142, 625, 262, 16931, 3290, 50256});
  fs::remove_all(dir);
}

TEST_CASE("preprocess errors name the file and line and leave nothing behind", "[data][preprocess][errors]") {
  fs::path dir = fresh_dir("preprocess_errors");
  spit((dir / "bad.jsonl").string(), "{\"text\": \"fine\"}\n{\"text\": broken}\n");
  spit((dir / "nokey.jsonl").string(), "{\"text\": \"fine\"}\n{\"body\": \"x\"}\n");
  PreprocessOptions opt;
  opt.output_prefix = (dir / "out").string();
  opt.inputs = {(dir / "bad.jsonl").string()};
  REQUIRE_THROWS_WITH(preprocess(gpt2(), opt), Catch::Contains("bad.jsonl' line 2 is not JSON"));
  opt.inputs = {(dir / "nokey.jsonl").string()};
  REQUIRE_THROWS_WITH(preprocess(gpt2(), opt), Catch::Contains("nokey.jsonl' line 2 has no string field \"text\""));
  opt.inputs = {(dir / "missing.jsonl").string()};
  REQUIRE_THROWS_WITH(preprocess(gpt2(), opt),
                      Catch::Contains("cannot read input") && Catch::Contains("missing.jsonl"));
  // No output, no temporary file.
  REQUIRE(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 2);
  fs::remove_all(dir);
}

TEST_CASE("bad .idx/.bin files give one clear error each", "[data][indexed][errors]") {
  fs::path dir = fresh_dir("indexed_errors");
  std::string idx = slurp(kSample + ".idx"), bin = slurp(kSample + ".bin");
  auto make = [&](const std::string& name, std::string i, std::string b) {
    std::string prefix = (dir / name).string();
    spit(prefix + ".idx", i);
    spit(prefix + ".bin", b);
    return prefix;
  };
  using Catch::Contains;
  REQUIRE_THROWS_WITH(IndexedDataset((dir / "absent").string()), Contains("cannot open") && Contains("absent.idx"));
  std::string bad = idx;
  bad[0] = 'X';
  REQUIRE_THROWS_WITH(IndexedDataset(make("magic", bad, bin)), Contains("magic.idx") && Contains("MMIDIDX"));
  bad = idx;
  bad[9] = 2;
  REQUIRE_THROWS_WITH(IndexedDataset(make("version", bad, bin)), Contains("version 2") && Contains("byte 9"));
  bad = idx;
  bad[17] = 11;
  REQUIRE_THROWS_WITH(IndexedDataset(make("dtype", bad, bin)), Contains("unknown dtype code 11"));
  REQUIRE_THROWS_WITH(IndexedDataset(make("short_idx", idx.substr(0, 1000), bin)),
                      Contains("short_idx.idx") && Contains("truncated"));
  REQUIRE_THROWS_WITH(IndexedDataset(make("short_bin", idx, bin.substr(0, 1000))),
                      Contains("short_bin.bin") && Contains("the .bin is truncated"));
  bad = idx;
  bad[34 + 4 * 10000 + 8] = 99;  // pointer of sequence 1
  REQUIRE_THROWS_WITH(IndexedDataset(make("pointer", bad, bin)), Contains("pointer of sequence 1"));
  REQUIRE_THROWS_WITH(IndexedDataset(make("tiny", "MMIDIDX", bin)), Contains("shorter than the 34-byte header"));
  fs::remove_all(dir);
}

TEST_CASE("the writer never leaves a half-written dataset", "[data][indexed]") {
  fs::path dir = fresh_dir("writer");
  std::string prefix = (dir / "x").string();
  {
    IndexedDatasetWriter w(prefix, TokenDType::U16);
    std::vector<int32_t> tokens{1, 2, 3};
    w.add_sequence(tokens);
    w.end_document();
    REQUIRE_FALSE(fs::exists(prefix + ".bin"));  // only temporary files so far
    REQUIRE_THROWS_WITH(w.add_sequence(std::vector<int32_t>{70000}), Catch::Contains("does not fit the uint16"));
  }  // destroyed without finalize(): everything removed
  REQUIRE(fs::is_empty(dir));
  {
    IndexedDatasetWriter w(prefix, TokenDType::I32);
    w.add_sequence(std::vector<int32_t>{70000, 5});
    w.end_document();
    w.finalize();
  }
  IndexedDataset d(prefix);
  REQUIRE(d.dtype() == TokenDType::I32);
  REQUIRE(d.sequence(0) == std::vector<int64_t>{70000, 5});
  REQUIRE(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 2);
  fs::remove_all(dir);
}

TEST_CASE("the loader slices global batches by rank, masks EOD and resumes exactly", "[data][loader]") {
  auto data = std::make_shared<const IndexedDataset>(kSample);
  auto ds = std::make_shared<GptDataset>(data, "train", 0, 9490, 200, 16, 1234, false);
  // One process, 2 data-parallel ranks: rank r's samples are [r*mb, (r+1)*mb) of each step.
  LoaderOptions opt;
  opt.micro_batch = 3;
  opt.dp_size = 2;
  opt.eod_mask_loss = true;
  LoaderOptions r1 = opt;
  r1.dp_rank = 1;
  GptLoader rank0(ds, opt), rank1(ds, r1);
  MicroBatch a = rank0.next(), b = rank1.next();
  REQUIRE(a.first_sample == 0);
  REQUIRE(b.first_sample == 3);
  REQUIRE(a.tokens.shape() == Shape{3, 17});
  REQUIRE(a.loss_mask.shape() == Shape{3, 16});
  std::vector<int64_t> s4;
  ds->sample(4, s4);
  for (int t = 0; t < 17; ++t) REQUIRE(b.tokens.data<int32_t>()[17 + t] == s4[size_t(t)]);
  for (int t = 0; t < 16; ++t) REQUIRE(b.loss_mask.data<float>()[16 + t] == (s4[size_t(t)] == 50256 ? 0.0f : 1.0f));
  REQUIRE(rank0.consumed_samples() == 6);
  // Resuming from consumed_samples = 6 gives what the uninterrupted loader gives next.
  MicroBatch next = rank0.next();
  LoaderOptions resumed = opt;
  resumed.consumed_samples = 6;
  MicroBatch again = GptLoader(ds, resumed).next();
  REQUIRE(next.tokens.to_double_vector() == again.tokens.to_double_vector());
  REQUIRE(next.loss_mask.to_double_vector() == again.loss_mask.to_double_vector());
  LoaderOptions late = opt;
  late.consumed_samples = ds->size() - 2;
  REQUIRE_THROWS_WITH(GptLoader(ds, late).next(), Catch::Contains("train_iters x global_batch_size"));
}
