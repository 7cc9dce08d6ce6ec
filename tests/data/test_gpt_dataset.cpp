// GPT dataset indices against the shared test vectors (computed with real numpy RandomState over
// the genuine Megatron sample), the numpy shuffle itself, split, blending, cache.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/gpt_dataset.h"
#include "data/numpy_random.h"
#include "data_test_util.h"

using namespace mt;
using namespace mt::data;

namespace {
const std::string kSample = MOETRAIN_SOURCE_DIR "/tests/data/megatron_sample/my-gpt2_text_document";
nlohmann::json vectors() {
  std::ifstream in(MOETRAIN_SOURCE_DIR "/tests/data/megatron_sample/gpt_index_testvectors.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}
template <class T>
std::vector<T> head(const std::vector<T>& v, size_t n) {
  return std::vector<T>(v.begin(), v.begin() + std::min(n, v.size()));
}
}  // namespace

TEST_CASE("numpy RandomState shuffle is reproduced bit-exactly", "[data][gpt]") {
  NumpyRandomState rng(1234);
  std::vector<int> a(20), b(20);
  for (int i = 0; i < 20; ++i) a[i] = b[i] = i;
  rng.shuffle(a.data(), 20);
  REQUIRE(a == std::vector<int>{3, 13, 2, 16, 14, 5, 4, 0, 8, 18, 17, 11, 10, 9, 7, 1, 19, 12, 6, 15});
  rng.shuffle(b.data(), 20);  // the state carries over
  REQUIRE(b == std::vector<int>{8, 19, 13, 1, 4, 17, 14, 11, 9, 0, 7, 3, 10, 6, 2, 5, 12, 16, 18, 15});
}

TEST_CASE("split strings give Megatron's boundaries", "[data][gpt]") {
  auto v = vectors();
  auto b = split_boundaries("949,50,1", 10000);
  REQUIRE(std::vector<int64_t>(b.begin(), b.end()) == v["split_949_50_1"].get<std::vector<int64_t>>());
  REQUIRE(split_boundaries("98/2/0", 100) == std::array<int64_t, 4>{0, 98, 100, 100});
  REQUIRE(split_boundaries("1", 10) == std::array<int64_t, 4>{0, 10, 10, 10});
  REQUIRE_THROWS_WITH(split_boundaries("9x,1", 10), Catch::Contains("'9x'"));
  REQUIRE_THROWS_WITH(split_boundaries("0,0,0", 10), Catch::Contains("sums to 0"));
}

TEST_CASE("doc, sample and shuffle indices match the test vectors", "[data][gpt]") {
  auto v = vectors();
  auto data = std::make_shared<const IndexedDataset>(kSample);
  for (const char* name : {"test", "test_b", "train"}) {
    DYNAMIC_SECTION(name) {
      auto c = v[name];
      auto docs = c["docs"].get<std::vector<int64_t>>();
      GptDataset ds(data, name, docs[0], docs[1], c["num_samples"], c["seq_length"], c["seed"].get<uint32_t>(), false);
      const GptIndices& g = ds.indices();
      REQUIRE(g.tokens_per_epoch == c["tokens_per_epoch"].get<int64_t>());
      REQUIRE(g.num_epochs == c["num_epochs"].get<int64_t>());
      REQUIRE(g.separate_last_epoch == c["separate_last_epoch"].get<bool>());
      REQUIRE(int64_t(g.doc_idx.size()) == c["doc_idx_len"].get<int64_t>());
      auto doc_head = c["doc_idx_head"].get<std::vector<int32_t>>();
      REQUIRE(head(g.doc_idx, doc_head.size()) == doc_head);
      REQUIRE(int64_t(g.sample_idx.size() / 2) == c["sample_idx_len"].get<int64_t>());
      std::vector<int64_t> sample_head;
      for (auto& row : c["sample_idx_head"]) {
        sample_head.push_back(row[0]);
        sample_head.push_back(row[1]);
      }
      REQUIRE(head(g.sample_idx, sample_head.size()) == sample_head);
      REQUIRE(int64_t(g.shuffle_idx.size()) == c["shuffle_idx_len"].get<int64_t>());
      auto shuffle_head = c["shuffle_idx_head"].get<std::vector<int64_t>>();
      REQUIRE(head(g.shuffle_idx, shuffle_head.size()) == shuffle_head);
      for (int i = 0; i < 3; ++i) {
        std::vector<int64_t> tokens;
        ds.sample(i, tokens);
        REQUIRE(tokens == c["samples_0_3"][i].get<std::vector<int64_t>>());
      }
    }
  }
}

TEST_CASE("blending indices follow Megatron's rule", "[data][gpt]") {
  auto v = vectors();
  BlendingIndices a = build_blending_indices({0.3, 0.7}, 20);
  REQUIRE(std::vector<int64_t>(a.dataset_index.begin(), a.dataset_index.end()) ==
          v["blend_0.3_0.7_size20"]["dataset_index"].get<std::vector<int64_t>>());
  REQUIRE(a.dataset_sample_index == v["blend_0.3_0.7_size20"]["dataset_sample_index"].get<std::vector<int64_t>>());
  BlendingIndices b = build_blending_indices({1, 1, 1}, 12);
  REQUIRE(std::vector<int64_t>(b.dataset_index.begin(), b.dataset_index.end()) ==
          v["blend_1_1_1_size12"]["dataset_index"].get<std::vector<int64_t>>());
  REQUIRE(b.dataset_sample_index == v["blend_1_1_1_size12"]["dataset_sample_index"].get<std::vector<int64_t>>());
}

TEST_CASE("blended train/valid/test datasets from a weighted data_path", "[data][gpt]") {
  DataPath path = parse_data_path({"0.3", kSample, "0.7", kSample});
  REQUIRE(path.weights == std::vector<double>{0.3, 0.7});
  auto sets = build_train_valid_test(path, "949,50,1", {100, 10, 0}, 16, 1234, false);
  REQUIRE(sets[0]);
  REQUIRE(sets[1]);
  REQUIRE_FALSE(sets[2]);
  // Component targets ceil(n * w * 1.005): 31 + 71 for train.
  REQUIRE(sets[0]->size() == 31 + 71);
  std::vector<int64_t> tokens;
  sets[0]->sample(5, tokens);
  REQUIRE(tokens.size() == 17);
  REQUIRE_THROWS_WITH(parse_data_path({"0.3", kSample, kSample}), Catch::Contains("alternates weight and prefix"));
  REQUIRE_THROWS_WITH(parse_data_path({"x", kSample, "1", kSample}), Catch::Contains("'x'"));
}

TEST_CASE("index arrays are cached next to the data and rebuilt when stale", "[data][gpt]") {
  namespace fs = std::filesystem;
  fs::path dir = datatest::fresh_dir("cache");
  for (const char* ext : {".bin", ".idx"}) fs::copy_file(kSample + ext, dir / (std::string("d") + ext));
  std::string prefix = (dir / "d").string();
  auto data = std::make_shared<const IndexedDataset>(prefix);
  GptDataset first(data, "train", 0, 9490, 100, 16, 1234);
  REQUIRE_THAT(first.cache_status(), Catch::StartsWith("built, cached"));
  GptDataset second(data, "train", 0, 9490, 100, 16, 1234);
  REQUIRE_THAT(second.cache_status(), Catch::StartsWith("loaded"));
  REQUIRE(second.indices().shuffle_idx == first.indices().shuffle_idx);
  REQUIRE(second.indices().sample_idx == first.indices().sample_idx);
  GptDataset other_seed(data, "train", 0, 9490, 100, 16, 99);
  REQUIRE_THAT(other_seed.cache_status(), Catch::StartsWith("built"));
  // A damaged cache file is rebuilt, not trusted.
  for (auto& entry : fs::directory_iterator(dir / "index-cache"))
    if (entry.path().string().find("_shuffle_idx.npy") != std::string::npos) fs::resize_file(entry.path(), 100);
  datatest::StderrCapture err;
  GptDataset rebuilt(data, "train", 0, 9490, 100, 16, 1234);
  REQUIRE_THAT(err.text(), Catch::Contains("_shuffle_idx.npy' is damaged (it is truncated: 100 bytes, shorter than "
                                           "its 128-byte header): rebuilding it"));
  REQUIRE_THAT(rebuilt.cache_status(), Catch::StartsWith("built"));
  REQUIRE(rebuilt.indices().shuffle_idx == first.indices().shuffle_idx);
  fs::remove_all(dir);
}
