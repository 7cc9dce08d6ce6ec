// Damaged or unusual input files never crash the program: a damaged index cache is rebuilt with
// one line naming the file, a bad .idx/.bin is refused naming the file, what is wrong and what to
// do, a blend whose test share is 0 builds no test set, preprocess refuses empty inputs, and the
// loader refuses token ids the tokenizer does not have.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>

#include "data/gpt_dataset.h"
#include "data/indexed_dataset.h"
#include "data/loader.h"
#include "data/npy.h"
#include "data/preprocess.h"
#include "data_test_util.h"
#include "runtime/error.h"

using namespace mt;
using namespace mt::data;
using namespace datatest;
using Catch::Contains;
using Catch::StartsWith;

namespace {

// Every sample of a dataset, in order.
std::vector<std::vector<int64_t>> all_samples(const SampleDataset& ds) {
  std::vector<std::vector<int64_t>> out(size_t(ds.size()));
  for (int64_t i = 0; i < ds.size(); ++i) ds.sample(i, out[size_t(i)]);
  return out;
}

// Where the data of a .npy file's bytes starts.
size_t npy_data_offset(const std::string& bytes) {
  return 10 + (uint8_t(bytes[8]) | (size_t(uint8_t(bytes[9])) << 8));
}

// Overwrites element i (of `item` bytes) of a .npy file's data with the low bytes of v.
void set_npy_element(std::string& bytes, size_t item, size_t i, int64_t v) {
  std::memcpy(bytes.data() + npy_data_offset(bytes) + i * item, &v, item);
}

std::string hex64(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)h);
  return buf;
}

// Replaces a cache file and the checksum the .dsc lists for it, as if it had been written so.
void rewrite_with_checksum(const std::string& base, const std::string& array, const std::string& bytes) {
  std::string file = index_cache_file(base, array), dsc = slurp(base + ".dsc");
  std::string old_sum = hex64(checksum64(slurp(file).data(), slurp(file).size()));
  size_t at = dsc.find(old_sum);
  REQUIRE(at != std::string::npos);
  dsc.replace(at, 16, hex64(checksum64(bytes.data(), bytes.size())));
  spit(file, bytes);
  spit(base + ".dsc", dsc);
}

}  // namespace

TEST_CASE("a damaged index cache is rebuilt with one line naming the file, never served", "[data][cache][errors]") {
  fs::path dir = fresh_dir("damaged_cache");
  for (const char* ext : {".bin", ".idx"}) fs::copy_file(kSample + ext, dir / (std::string("d") + ext));
  auto data = std::make_shared<const IndexedDataset>((dir / "d").string());
  auto make = [&] { return GptDataset(data, "train", 0, 9490, 100, 16, 1234); };
  GptDataset first = make();
  REQUIRE_THAT(first.cache_status(), StartsWith("built, cached in "));
  std::string base = first.cache_status().substr(std::string("built, cached in ").size());
  const auto want = all_samples(first);
  REQUIRE(want.size() == 3557);  // one epoch of the 9490 sequences: 3557 samples of 16 + 1 tokens
  fs::path pristine = dir / "pristine";
  fs::copy(dir / "index-cache", pristine);

  struct Damage {
    const char* name;
    std::string file;    // the file the message must name
    std::string reason;  // what it must say is wrong
    std::function<void()> apply;
  };
  std::string doc = index_cache_file(base, "doc_idx"), sample = index_cache_file(base, "sample_idx"),
              shuffle = index_cache_file(base, "shuffle_idx");
  // Changes 4 bytes of a file's data in place, size intact (the report).
  auto poke4 = [](const std::string& file, size_t at) {
    std::string b = slurp(file);
    std::memcpy(b.data() + npy_data_offset(b) + at, "\xff\xff\x7f\x7f", 4);
    spit(file, b);
  };
  std::vector<Damage> damages = {
      {"4 bytes of shuffle_idx", shuffle, "checksum", [&] { poke4(shuffle, 24); }},
      {"4 bytes of sample_idx", sample, "checksum", [&] { poke4(sample, 40); }},
      {"4 bytes of doc_idx", doc, "checksum", [&] { poke4(doc, 12); }},
      {"two shuffle_idx entries swapped (still a permutation)", shuffle, "checksum",
       [&] {
         std::string b = slurp(shuffle);
         std::swap_ranges(b.begin() + long(npy_data_offset(b)), b.begin() + long(npy_data_offset(b)) + 8,
                          b.begin() + long(npy_data_offset(b)) + 8);
         spit(shuffle, b);
       }},
      {"a truncated doc_idx", doc, "it holds 7592 data bytes but its shape needs 9490 elements of 4 bytes",
       [&] {
         std::string b = slurp(doc);
         spit(doc, b.substr(0, npy_data_offset(b) + 7592));
       }},
      {"shuffle_idx out of range with a matching checksum", shuffle,
       "shuffle_idx entry 3 is 2139095039, outside the 3557 samples [0, 3557)",
       [&] {
         std::string b = slurp(shuffle);
         set_npy_element(b, 8, 3, 2139095039);
         rewrite_with_checksum(base, "shuffle_idx", b);
       }},
      {"doc_idx out of range with a matching checksum", doc,
       "doc_idx entry 0 is 9490, outside the split's sequences [0, 9490)",
       [&] {
         std::string b = slurp(doc);
         set_npy_element(b, 4, 0, 9490);
         rewrite_with_checksum(base, "doc_idx", b);
       }},
      {"sample_idx offset out of range with a matching checksum", sample, "sample_idx row 1 has offset 1000000",
       [&] {
         std::string b = slurp(sample);
         set_npy_element(b, 8, 3, 1000000);
         rewrite_with_checksum(base, "sample_idx", b);
       }},
      {"a changed description", base + ".dsc", "does not hold the description",
       [&] {
         std::string b = slurp(base + ".dsc");
         b[b.find("Random seed 1234")] = 'r';
         spit(base + ".dsc", b);
       }},
      {"no checksum line", base + ".dsc", "lists no checksum for shuffle_idx.npy",
       [&] {
         std::string b = slurp(base + ".dsc");
         spit(base + ".dsc", b.substr(0, b.find("Checksum shuffle_idx")));
       }},
  };
  for (const Damage& d : damages) {
    DYNAMIC_SECTION(d.name) {
      fs::remove_all(dir / "index-cache");
      fs::copy(pristine, dir / "index-cache");
      d.apply();
      StderrCapture err;
      GptDataset again = make();
      std::string printed = err.text();
      INFO(printed);
      REQUIRE_THAT(printed, StartsWith("moetrain: index cache file '" + d.file + "' is damaged (") &&
                                Contains(d.reason) && Catch::EndsWith("): rebuilding it\n"));
      REQUIRE(std::count(printed.begin(), printed.end(), '\n') == 1);
      REQUIRE_THAT(again.cache_status(),
                   StartsWith("built, cached in " + base + " (replacing a damaged cache: '" + d.file + "'"));
      REQUIRE(all_samples(again) == want);
      // rebuilt in place: the next start loads it silently
      StderrCapture quiet;
      GptDataset third = make();
      REQUIRE(quiet.text().empty());
      REQUIRE(third.cache_status() == "loaded " + base);
      REQUIRE(all_samples(third) == want);
    }
  }
  fs::remove_all(dir);
}

TEST_CASE("check_gpt_indices finds every kind of bad index array", "[data][cache][errors]") {
  IndexedDataset data(kSample);
  std::vector<int32_t> sizes = data.sizes().to_vector();
  // 100 sequences, 616 tokens: 38 samples of 16 + 1 tokens per epoch, 2 epochs (76) for 50 samples
  const GptIndices g = build_gpt_indices(sizes, 0, 100, 50, 16, 7);
  REQUIRE(g.num_epochs == 2);
  REQUIRE(g.num_samples() == 76);
  REQUIRE_FALSE(check_gpt_indices(g, sizes, 0, 100, 16));
  auto broken = [&](const std::function<void(GptIndices&)>& edit) {
    GptIndices b = g;
    edit(b);
    std::optional<GptIndexProblem> p = check_gpt_indices(b, sizes, 0, 100, 16);
    REQUIRE(p);
    REQUIRE_THAT(p->what, StartsWith(p->array));
    return p->what;
  };
  CHECK(broken([](GptIndices& b) { b.doc_idx.pop_back(); }) ==
        "doc_idx holds 199 entries; 100 sequences x 2 epochs need 200");
  CHECK(broken([](GptIndices& b) { b.doc_idx[5] = 100; }) ==
        "doc_idx entry 5 is 100, outside the split's sequences [0, 100)");
  CHECK(broken([](GptIndices& b) { b.doc_idx[5] = -1; }) ==
        "doc_idx entry 5 is -1, outside the split's sequences [0, 100)");
  int32_t twice = g.doc_idx[0];
  CHECK(broken([&](GptIndices& b) { b.doc_idx[1] = twice; }) ==
        "doc_idx holds sequence " + std::to_string(twice) + " more than 2 times (once per epoch)");
  CHECK(broken([](GptIndices& b) { b.sample_idx.resize(b.sample_idx.size() - 2); }) ==
        "sample_idx holds 76 rows; 76 samples need 77");
  CHECK(broken([](GptIndices& b) { b.sample_idx[1] = 1; }) == "sample_idx row 0 is (0, 1) instead of (0, 0)");
  CHECK(broken([](GptIndices& b) { b.sample_idx[2] = int64_t(1) << 40; }) ==
        "sample_idx row 1 points at doc_idx position 1099511627776, outside [0, 200)");
  int64_t p1 = g.sample_idx[2], size1 = sizes[size_t(g.doc_idx[size_t(p1)])];
  CHECK(broken([](GptIndices& b) { b.sample_idx[3] = -2; }) ==
        "sample_idx row 1 has offset -2 in a sequence of " + std::to_string(size1) + " tokens");
  // moving row 1 one token back inside its sequence makes sample 0 one token short
  int64_t k = 1;
  while (g.sample_idx[size_t(2 * k + 1)] == 0) ++k;
  CHECK(broken([&](GptIndices& b) { b.sample_idx[size_t(2 * k + 1)] -= 1; }) ==
        "sample_idx rows " + std::to_string(k - 1) + " and " + std::to_string(k) +
            " span 16 tokens instead of 17 (sample " + std::to_string(k - 1) + ")");
  CHECK(broken([](GptIndices& b) { b.shuffle_idx.push_back(0); }) == "shuffle_idx holds 77 entries; expected 76");
  CHECK(broken([](GptIndices& b) { b.shuffle_idx[3] = 76; }) ==
        "shuffle_idx entry 3 is 76, outside the 76 samples [0, 76)");
  int64_t first = g.shuffle_idx[0];
  CHECK(broken([&](GptIndices& b) { b.shuffle_idx[1] = first; }) ==
        "shuffle_idx holds sample " + std::to_string(first) + " twice (entry 1)");
}

TEST_CASE("bad .idx/.bin files name the file, what is wrong and what to do", "[data][indexed][errors]") {
  fs::path dir = fresh_dir("idx_damage");
  const std::string idx = slurp(kSample + ".idx"), bin = slurp(kSample + ".bin");
  auto make = [&](const std::string& name, const std::string& i, const std::string& b) {
    std::string prefix = (dir / name).string();
    spit(prefix + ".idx", i);
    spit(prefix + ".bin", b);
    return prefix;
  };
  // .idx layout: 34-byte header, sizes i32[10000], pointers i64[10000], doc_idx i64[10001]
  const size_t sizes_at = 34, pointers_at = 34 + 4 * 10000, doc_at = 34 + 12 * 10000;
  auto with = [&](size_t at, int64_t v, size_t bytes) {
    std::string b = idx;
    std::memcpy(b.data() + at, &v, bytes);
    return b;
  };
  const std::string todo = "re-create the dataset with `moetrain preprocess`";
  struct Case {
    const char* name;
    std::string idx, bin, message;
  };
  std::vector<Case> cases = {
      {"negative_size", with(sizes_at + 4 * 3, -5, 4), bin, "negative_size.idx': sequence 3 has negative size -5"},
      {"doc_decreasing", with(doc_at + 8 * 7, 2, 8), bin,
       "doc_decreasing.idx': document index entry 7 (2) is smaller than the one before it (6)"},
      {"doc_end", with(doc_at + 8 * 10000, 10001, 8), bin,
       "doc_end.idx': the document index must run from 0 to the sequence count 10000; it runs from 0 to 10001"},
      {"doc_start", with(doc_at, 1, 8), bin, "doc_start.idx': the document index must run from 0"},
      {"counts", with(18, int64_t(1) << 50, 8), bin, "counts.idx' declares 1125899906842624 sequences"},
      {"pointer_past_end", with(pointers_at + 8 * 9999, 1 << 30, 8), bin, "pointer of sequence 9999 is 1073741824"},
      {"bin_longer", idx, bin + "xx", "bin_longer.bin' is 120002 bytes but"},
      {"empty_bin", idx, "", "empty_bin.bin' is 0 bytes but"},
      {"empty_idx", "", bin, "empty_idx.idx' is 0 bytes, shorter than the 34-byte header"},
      {"idx_plus_one", idx + "x", bin, "idx_plus_one.idx' is 200043 bytes but its header"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    REQUIRE_THROWS_WITH(IndexedDataset(make(c.name, c.idx, c.bin)), Contains(c.message) && Contains(todo));
  }
  // A prefix given with its suffix, or not there at all: say what a prefix is.
  REQUIRE_THROWS_WITH(IndexedDataset(kSample + ".bin"),
                      Contains("my-gpt2_text_document.bin.idx") && Contains("without the suffix: '" + kSample + "')"));
  // A dtype whose values are no token ids (int16 reads 50256 as -15280): refused when read.
  IndexedDataset int16(make("int16", with(17, 3, 1), bin));
  REQUIRE_THROWS_WITH(int16.sequence(0), Contains("int16.bin': token 6 of sequence 0 is -15280, not a token id") &&
                                             Contains("moetrain preprocess"));
  fs::remove_all(dir);
}

TEST_CASE("no damaged or truncated .idx/.bin crashes: each opens and reads, or names the file", "[data][indexed][slow]") {
  fs::path dir = fresh_dir("idx_fuzz");
  {  // the first 300 documents of the sample (a 6 KB .idx): small files keep the many attempts fast
    IndexedDataset sample(kSample);
    IndexedDatasetWriter w((dir / "small").string(), TokenDType::U16);
    for (int64_t s = 0; s < 300; ++s) {
      std::vector<int64_t> ids = sample.sequence(s);
      w.add_sequence(std::vector<int32_t>(ids.begin(), ids.end()));
      w.end_document();
    }
    w.finalize();
  }
  const std::string idx = slurp((dir / "small.idx").string()), bin = slurp((dir / "small.bin").string());
  REQUIRE(idx.size() == 34 + 12 * 300 + 8 * 301);
  std::string prefix = (dir / "d").string();
  int opened = 0, refused = 0;
  std::string bin_written = "(none)";
  auto attempt = [&](const std::string& i, const std::string& b) {
    spit(prefix + ".idx", i);
    if (b != bin_written) spit(prefix + ".bin", bin_written = b);
    try {
      auto data = std::make_shared<const IndexedDataset>(prefix);
      for (int64_t s = 0; s < data->num_sequences(); ++s) data->sequence(s);
      GptDataset ds(data, "train", 0, data->num_sequences(), 50, 16, 1, false);
      all_samples(ds);
      ++opened;
    } catch (const Error& e) {
      REQUIRE_THAT(e.what(), Contains(prefix));
      ++refused;
    }
  };
  // every header byte and every 7th byte of the arrays, each set to 4 values
  std::vector<size_t> positions;
  for (size_t at = 0; at < 34; ++at) positions.push_back(at);
  for (size_t at = 34; at < idx.size(); at += 7) positions.push_back(at);
  positions.push_back(idx.size() - 1);
  for (size_t at : positions)
    for (int v : {0x00, 0xff, 0x80, uint8_t(idx[at]) ^ 1}) {
      std::string damaged = idx;
      damaged[at] = char(v);
      attempt(damaged, bin);
    }
  for (size_t len : {size_t(0), size_t(1), size_t(33), size_t(34), size_t(35), idx.size() / 2, idx.size() - 1})
    attempt(idx.substr(0, len), bin);
  for (size_t len : {size_t(0), size_t(1), bin.size() / 2, bin.size() - 1}) attempt(idx, bin.substr(0, len));
  for (size_t at = 0; at < bin.size(); at += bin.size() / 50) {  // token values change: still a dataset
    std::string damaged = bin;
    damaged[at] = char(0xff);
    attempt(idx, damaged);
  }
  INFO("opened " << opened << ", refused " << refused);
  REQUIRE(refused > 2000);
  REQUIRE(opened > 50);
  fs::remove_all(dir);
}

TEST_CASE("a blend whose test share is 0 builds no test set, as Megatron", "[data][gpt][blend]") {
  fs::path dir = fresh_dir("blend_split");
  // a second dataset: 40 sequences of 20 tokens
  std::string small = (dir / "small").string();
  {
    IndexedDatasetWriter w(small, TokenDType::U16);
    for (int s = 0; s < 40; ++s) {
      std::vector<int32_t> tokens(20);
      for (int t = 0; t < 20; ++t) tokens[size_t(t)] = 100 * s + t;
      w.add_sequence(tokens);
      w.end_document();
    }
    w.finalize();
  }
  DataPath path = parse_data_path({"0.3", kSample, "0.7", small});
  // the tiny configs' split: train and valid blended, no test set (it was an error before)
  auto sets = build_train_valid_test(path, "95,5,0", {100, 20, 10}, 16, 1234, false);
  REQUIRE(sets[0]);
  REQUIRE(sets[1]);
  REQUIRE_FALSE(sets[2]);
  REQUIRE(sets[0]->size() == 31 + 71);  // ceil(100 * w * 1.005) per component
  REQUIRE(sets[1]->size() == 7 + 15);
  // the blend serves the components' own samples in Megatron's order: sample 0 from the
  // 0.7 component (its first), sample 1 from the 0.3 component (its first)
  GptDataset small_train(std::make_shared<const IndexedDataset>(small), "train", 0, 38, 71, 16, 1234, false);
  GptDataset sample_train(std::make_shared<const IndexedDataset>(kSample), "train", 0, 9500, 31, 16, 1234, false);
  std::vector<int64_t> blended, direct;
  sets[0]->sample(0, blended);
  small_train.sample(0, direct);
  REQUIRE(blended == direct);
  blended.clear(), direct.clear();
  sets[0]->sample(1, blended);
  sample_train.sample(0, direct);
  REQUIRE(blended == direct);
  // a share that one dataset is too small for (0.1% of 40 sequences rounds to 0) is an error
  REQUIRE_THROWS_WITH(build_train_valid_test(path, "949,50,1", {100, 20, 10}, 16, 1234, false),
                      Contains("split '949,50,1' gives '" + small + "' no test sequences") &&
                          Contains("give test a larger share in --split"));
  fs::remove_all(dir);
}

TEST_CASE("preprocess refuses a folder, and inputs without documents or tokens", "[data][preprocess][errors]") {
  fs::path dir = fresh_dir("preprocess_empty");
  fs::create_directories(dir / "corpus");
  spit((dir / "corpus" / "a.jsonl").string(), "{\"text\": \"fine\"}\n");
  spit((dir / "empty.jsonl").string(), "\n  \n");
  spit((dir / "blank.jsonl").string(), "{\"text\": \"\"}\n{\"text\": \"\"}\n");
  PreprocessOptions opt;
  opt.output_prefix = (dir / "out").string();
  std::string folder = (dir / "corpus").string();
  opt.inputs = {folder};
  REQUIRE_THROWS_WITH(preprocess(gpt2(), opt),
                      "input '" + folder + "' is a folder: give the files in it (e.g. --input " + folder + "/*.jsonl)");
  opt.inputs = {(dir / "empty.jsonl").string()};
  REQUIRE_THROWS_WITH(preprocess(gpt2(), opt),
                      "the input '" + opt.inputs[0] +
                          "' holds no documents (expected one JSON object per line, e.g. {\"text\": \"...\"}): "
                          "nothing to write");
  opt.inputs = {(dir / "blank.jsonl").string(), (dir / "empty.jsonl").string()};
  REQUIRE_THROWS_WITH(preprocess(gpt2(), opt), "the 2 documents in the inputs '" + opt.inputs[0] + "', '" +
                                                   opt.inputs[1] + "' are all empty: nothing to write");
  // nothing written, no temporary left
  REQUIRE(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 3);
  fs::remove_all(dir);
}

TEST_CASE("the loader refuses token ids outside the tokenizer's vocabulary", "[data][loader][errors]") {
  auto data = std::make_shared<const IndexedDataset>(kSample);
  auto ds = std::make_shared<GptDataset>(data, "train", 0, 9490, 8, 16, 1234, false);
  std::vector<int64_t> first;
  ds->sample(0, first);
  int64_t largest = *std::max_element(first.begin(), first.end());
  LoaderOptions opt;
  opt.micro_batch = 1;
  opt.vocab_size = largest + 1;  // every id of sample 0 fits
  REQUIRE(GptLoader(ds, opt).next().tokens.data<int32_t>()[0] == first[0]);
  opt.vocab_size = 100;  // GPT-2 text has ids above 100 in every sample
  REQUIRE_THROWS_WITH(GptLoader(ds, opt).next(), StartsWith("data: sample 0 holds token id ") &&
                                                     Contains(", but the tokenizer has 100 ids: the dataset was made "
                                                              "with another tokenizer (or is damaged)"));
}
