// Megatron's GPT dataset (Megatron-DeepSpeed megatron/data/gpt_dataset.py;
// docs/data.md): fixed-length
// samples of seq_length + 1 tokens cut across sequence boundaries, from three index arrays
//   doc_idx      the split's sequence ids repeated for E epochs, shuffled
//   sample_idx   [M+1, 2] (position in doc_idx, token offset) where each sample starts
//   shuffle_idx  the order in which samples are served
// built exactly as Megatron builds them (numpy RandomState shuffles, the separate shuffle of a
// short last epoch), and blended datasets with Megatron's deterministic blending rule.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/indexed_dataset.h"

namespace mt::data {

// "949,50,1" (or "98/2/0") over n sequences -> boundaries {0, b1, b2, n}: train [0,b1),
// valid [b1,b2), test [b2,n); Python's round-half-even, remainder taken from the last ones.
std::array<int64_t, 4> split_boundaries(const std::string& split, int64_t n);

struct GptIndices {
  int64_t tokens_per_epoch = 0, num_epochs = 0;
  bool separate_last_epoch = false;
  std::vector<int32_t> doc_idx;
  std::vector<int64_t> sample_idx;  // [M+1, 2], row-major
  std::vector<int64_t> shuffle_idx;
  int64_t num_samples() const { return int64_t(shuffle_idx.size()); }  // M
};

// tokens_per_epoch, num_epochs and separate_last_epoch for sequences [begin, end) of `sizes` and
// at least num_samples samples, as Megatron decides them; the arrays are left empty.
GptIndices plan_gpt_indices(const std::vector<int32_t>& sizes, int64_t begin, int64_t end, int64_t num_samples,
                            int64_t seq_length);
// The three arrays for sequences [begin, end) of `sizes`, at least num_samples samples.
GptIndices build_gpt_indices(const std::vector<int32_t>& sizes, int64_t begin, int64_t end, int64_t num_samples,
                             int64_t seq_length, uint32_t seed);

// What is wrong with a set of index arrays: the array ("doc_idx", "sample_idx", "shuffle_idx")
// and what, naming it ("shuffle_idx entry 17 is 2139062271, outside the 285 samples [0, 285)").
struct GptIndexProblem {
  std::string array, what;
};
// Checks arrays read from a file against the plan in g (plan_gpt_indices) so that serving
// samples from them can never read out of bounds: doc_idx holds each sequence of [begin, end)
// once per epoch, sample_idx starts at (0, 0) and every sample spans seq_length + 1 tokens inside
// doc_idx, shuffle_idx is a permutation of the samples. O(array sizes).
std::optional<GptIndexProblem> check_gpt_indices(const GptIndices& g, const std::vector<int32_t>& sizes, int64_t begin,
                                                 int64_t end, int64_t seq_length);

// Anything that serves numbered samples of seq_length + 1 tokens.
class SampleDataset {
 public:
  virtual ~SampleDataset() = default;
  virtual int64_t size() const = 0;
  virtual int64_t seq_length() const = 0;
  // Appends sample i's seq_length + 1 token ids to out.
  virtual void sample(int64_t i, std::vector<int64_t>& out) const = 0;
};

// The index cache's file for `array` ("doc_idx", "sample_idx", "shuffle_idx") under the stem
// <cache dir>/<hash of the description>, which cache_status() names.
std::string index_cache_file(const std::string& base, const std::string& array);

class GptDataset : public SampleDataset {
 public:
  // `name` is "train", "valid" or "test" (it keys the index cache). With use_cache, the arrays
  // are kept in cache_dir (default <prefix dir>/index-cache/, as Megatron-DeepSpeed; with a
  // checksum of each file in the description file) and rebuilt when the description no longer matches, or, with one
  // line on stderr naming the file, when a cached file is damaged (checksum or values).
  GptDataset(std::shared_ptr<const IndexedDataset> data, const std::string& name, int64_t begin, int64_t end,
             int64_t num_samples, int64_t seq_length, uint32_t seed, bool use_cache = true,
             const std::string& cache_dir = "");
  int64_t size() const override { return indices_.num_samples(); }
  int64_t seq_length() const override { return seq_length_; }
  void sample(int64_t i, std::vector<int64_t>& out) const override;
  const GptIndices& indices() const { return indices_; }
  // "built", "loaded <base>", "built, cached in <base>", "built (not cached: ...)", with
  // " (replacing a damaged cache: ...)" after a damaged cache was found.
  const std::string& cache_status() const { return cache_status_; }

 private:
  std::shared_ptr<const IndexedDataset> data_;
  int64_t seq_length_;
  GptIndices indices_;
  std::string cache_status_;
};

// Megatron's helpers.cpp build_blending_indices: for sample s, the component i maximising
// w_i * max(s, 1) - count_i (first wins ties), and that component's running sample count.
struct BlendingIndices {
  std::vector<uint8_t> dataset_index;
  std::vector<int64_t> dataset_sample_index;
};
BlendingIndices build_blending_indices(std::vector<double> weights, int64_t size);

class BlendedDataset : public SampleDataset {
 public:
  BlendedDataset(std::vector<std::shared_ptr<const SampleDataset>> datasets, std::vector<double> weights, int64_t size);
  int64_t size() const override { return int64_t(index_.dataset_index.size()); }
  int64_t seq_length() const override { return datasets_[0]->seq_length(); }
  void sample(int64_t i, std::vector<int64_t>& out) const override;
  const BlendingIndices& indices() const { return index_; }

 private:
  std::vector<std::shared_ptr<const SampleDataset>> datasets_;
  BlendingIndices index_;
};

// data_path as Megatron takes it: one prefix, or weight prefix weight prefix ...
struct DataPath {
  std::vector<double> weights;  // empty for a single prefix
  std::vector<std::string> prefixes;
};
DataPath parse_data_path(const std::vector<std::string>& words);

// Train/valid/test datasets for a data_path and split with the requested sample counts (an empty
// split, or a count of 0, gives nullptr), as Megatron's build_train_valid_test_datasets. Blended:
// a split empty in every dataset gives nullptr; one empty in some datasets only is an error.
std::array<std::shared_ptr<const SampleDataset>, 3> build_train_valid_test(
    const DataPath& path, const std::string& split, std::array<int64_t, 3> num_samples, int64_t seq_length,
    uint32_t seed, bool use_cache = true, const std::string& cache_dir = "");

}  // namespace mt::data
