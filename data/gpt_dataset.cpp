#include "data/gpt_dataset.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

#include "data/npy.h"
#include "data/numpy_random.h"
#include "runtime/error.h"
#include "runtime/file_util.h"

namespace mt::data {
namespace {

// sequence ids [begin, end) repeated `epochs` times (epoch-major), shuffled.
std::vector<int32_t> build_doc_idx(int64_t begin, int64_t end, int64_t epochs, NumpyRandomState& rng) {
  std::vector<int32_t> idx;
  idx.reserve(size_t((end - begin) * epochs));
  for (int64_t e = 0; e < epochs; ++e)
    for (int64_t s = begin; s < end; ++s) idx.push_back(int32_t(s));
  rng.shuffle(idx.data(), int64_t(idx.size()));
  return idx;
}

// Megatron's build_sample_idx: where each of the M samples (seq_length + 1 tokens, consecutive
// samples sharing one boundary token) starts, as (position in doc_idx, offset in that sequence).
std::vector<int64_t> build_sample_idx(const std::vector<int32_t>& sizes, const std::vector<int32_t>& doc_idx,
                                      int64_t seq_length, int64_t num_samples) {
  std::vector<int64_t> idx;
  idx.reserve(size_t(2 * (num_samples + 1)));
  int64_t p = 0, off = 0;
  idx.push_back(0);
  idx.push_back(0);
  for (int64_t k = 0; k < num_samples; ++k) {
    int64_t need = seq_length + 1;
    while (need != 0) {
      int64_t len = sizes[size_t(doc_idx[size_t(p)])] - off;
      need -= len;
      if (need <= 0) {
        off += need + len - 1;
        need = 0;
      } else {
        ++p;
        off = 0;
      }
    }
    idx.push_back(p);
    idx.push_back(off);
  }
  return idx;
}

std::vector<int64_t> shuffled_range(int64_t begin, int64_t end, NumpyRandomState& rng) {
  std::vector<int64_t> v(size_t(std::max<int64_t>(end - begin, 0)));
  std::iota(v.begin(), v.end(), begin);
  rng.shuffle(v.data(), int64_t(v.size()));
  return v;
}

// --- index cache: <dir of prefix>/index-cache/<hash>{.dsc,_doc_idx.npy,_sample_idx.npy,_shuffle_idx.npy}

std::string describe(const IndexedDataset& data, const std::string& name, int64_t begin, int64_t end,
                     int64_t num_samples, int64_t seq_length, uint32_t seed) {
  struct stat st {};
  std::string idx_path = data.prefix() + ".idx";
  ::stat(idx_path.c_str(), &st);
  std::ostringstream os;
  os << "GPT Dataset (moetrain index cache v1)\n\nData prefix " << data.prefix() << "\nData .idx bytes " << st.st_size
     << "\nData .idx mtime " << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec << "\nDataset name " << name
     << "\nSequences " << begin << " to " << end << "\nNumber of samples " << num_samples << "\nSequence length "
     << seq_length << "\nRandom seed " << seed << "\n";
  return os.str();
}

std::string fnv1a_hex(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)h);
  return buf;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool load_cached(const std::string& base, const std::string& description, GptIndices& out) {
  if (read_all(base + ".dsc") != description) return false;
  try {
    NpyArray doc = read_npy(base + "_doc_idx.npy"), sample = read_npy(base + "_sample_idx.npy"),
             shuffle = read_npy(base + "_shuffle_idx.npy");
    if (doc.descr != "<i4" || sample.descr != "<i8" || shuffle.descr != "<i8") return false;
    out.doc_idx = npy_values<int32_t>(doc);
    out.sample_idx = npy_values<int64_t>(sample);
    out.shuffle_idx = npy_values<int64_t>(shuffle);
  } catch (const Error&) {
    return false;  // damaged cache: rebuild
  }
  return out.sample_idx.size() == 2 * (out.shuffle_idx.size() + 1);
}

void save_cached(const std::string& base, const std::string& description, const GptIndices& g) {
  write_npy(base + "_doc_idx.npy", "<i4", {int64_t(g.doc_idx.size())}, g.doc_idx.data(), g.doc_idx.size() * 4);
  write_npy(base + "_sample_idx.npy", "<i8", {int64_t(g.sample_idx.size() / 2), 2}, g.sample_idx.data(),
            g.sample_idx.size() * 8);
  write_npy(base + "_shuffle_idx.npy", "<i8", {int64_t(g.shuffle_idx.size())}, g.shuffle_idx.data(),
            g.shuffle_idx.size() * 8);
  write_file_atomically(base + ".dsc", description);  // last: it marks the cache complete
}

}  // namespace

std::array<int64_t, 4> split_boundaries(const std::string& split, int64_t n) {
  std::vector<double> parts;
  std::string token;
  std::string s = split;
  std::replace(s.begin(), s.end(), '/', ',');
  std::stringstream ss(s);
  while (std::getline(ss, token, ',')) {
    try {
      size_t used = 0;
      double v = std::stod(token, &used);
      MT_CHECK(token.find_first_not_of(" \t", used) == std::string::npos && v >= 0, "");
      parts.push_back(v);
    } catch (const std::exception&) {
      throw Error("split '" + split + "': '" + token + "' is not a non-negative number (expected e.g. 949,50,1)");
    }
  }
  parts.resize(3, 0.0);
  double total = parts[0] + parts[1] + parts[2];
  MT_CHECK(total > 0, "split '", split, "' sums to 0: give train,valid,test weights such as 949,50,1");
  std::array<int64_t, 4> b{0, 0, 0, 0};
  for (int k = 0; k < 3; ++k) b[k + 1] = b[k] + int64_t(std::nearbyint(parts[k] / total * double(n)));
  int64_t diff = b[3] - n;
  for (int k = 1; k < 4; ++k) b[k] -= diff;
  return b;
}

GptIndices build_gpt_indices(const std::vector<int32_t>& sizes, int64_t begin, int64_t end, int64_t num_samples,
                             int64_t seq_length, uint32_t seed) {
  MT_CHECK(begin >= 0 && begin < end && end <= int64_t(sizes.size()), "GPT dataset: sequence range [", begin, ", ",
           end, ") is empty or outside the ", sizes.size(), " sequences of the data");
  MT_CHECK(seq_length > 0 && num_samples > 0, "GPT dataset: seq_length and the number of samples must be positive");
  GptIndices g;
  for (int64_t s = begin; s < end; ++s) g.tokens_per_epoch += sizes[size_t(s)];
  int64_t t = g.tokens_per_epoch;
  MT_CHECK(t > 1, "GPT dataset: sequences [", begin, ", ", end, ") hold ", t, " tokens; at least 2 are needed");
  g.num_epochs = 1;
  while ((g.num_epochs * t - 1) / seq_length < num_samples) ++g.num_epochs;
  if (g.num_epochs > 1) {
    int64_t from_prev = ((g.num_epochs - 1) * t - 1) / seq_length;
    int64_t last = num_samples - from_prev, per_epoch = (t - 1) / seq_length;
    g.separate_last_epoch = last < int64_t(0.80 * double(per_epoch));
  }
  NumpyRandomState rng(seed);
  if (!g.separate_last_epoch) {
    g.doc_idx = build_doc_idx(begin, end, g.num_epochs, rng);
  } else {
    g.doc_idx = build_doc_idx(begin, end, g.num_epochs - 1, rng);
    std::vector<int32_t> last = build_doc_idx(begin, end, 1, rng);
    g.doc_idx.insert(g.doc_idx.end(), last.begin(), last.end());
  }
  int64_t total = (g.num_epochs * t - 1) / seq_length;
  g.sample_idx = build_sample_idx(sizes, g.doc_idx, seq_length, total);
  int64_t first = g.separate_last_epoch ? ((g.num_epochs - 1) * t - 1) / seq_length : total;
  g.shuffle_idx = shuffled_range(0, first, rng);
  std::vector<int64_t> rest = shuffled_range(first, total, rng);
  g.shuffle_idx.insert(g.shuffle_idx.end(), rest.begin(), rest.end());
  return g;
}

GptDataset::GptDataset(std::shared_ptr<const IndexedDataset> data, const std::string& name, int64_t begin,
                       int64_t end, int64_t num_samples, int64_t seq_length, uint32_t seed, bool use_cache,
                       const std::string& cache_dir)
    : data_(std::move(data)), seq_length_(seq_length) {
  std::string description = describe(*data_, name, begin, end, num_samples, seq_length, seed);
  std::filesystem::path dir = !cache_dir.empty() ? std::filesystem::path(cache_dir)
                                                 : std::filesystem::path(data_->prefix()).parent_path() / "index-cache";
  std::string base = (dir / fnv1a_hex(description)).string();
  if (use_cache && load_cached(base, description, indices_)) {
    cache_status_ = "loaded " + base;
    return;
  }
  indices_ = build_gpt_indices(data_->sizes().to_vector(), begin, end, num_samples, seq_length, seed);
  cache_status_ = "built";
  if (!use_cache) return;
  try {
    std::filesystem::create_directories(dir);
    save_cached(base, description, indices_);
    cache_status_ = "built, cached in " + base;
  } catch (const std::exception& e) {
    cache_status_ = std::string("built (not cached: ") + e.what() + ")";
  }
}

void GptDataset::sample(int64_t i, std::vector<int64_t>& out) const {
  MT_CHECK(i >= 0 && i < size(), "GPT dataset: sample ", i, " out of range [0, ", size(), ")");
  int64_t k = indices_.shuffle_idx[size_t(i)];
  int64_t p0 = indices_.sample_idx[size_t(2 * k)], o0 = indices_.sample_idx[size_t(2 * k + 1)];
  int64_t p1 = indices_.sample_idx[size_t(2 * k + 2)], o1 = indices_.sample_idx[size_t(2 * k + 3)];
  const std::vector<int32_t>& doc = indices_.doc_idx;
  if (p0 == p1) {
    data_->read(doc[size_t(p0)], o0, o1 - o0 + 1, out);
    return;
  }
  data_->read(doc[size_t(p0)], o0, -1, out);
  for (int64_t p = p0 + 1; p < p1; ++p) data_->read(doc[size_t(p)], 0, -1, out);
  data_->read(doc[size_t(p1)], 0, o1 + 1, out);
}

BlendingIndices build_blending_indices(std::vector<double> weights, int64_t size) {
  MT_CHECK(!weights.empty() && weights.size() <= 255, "blending: between 1 and 255 datasets, got ", weights.size());
  double total = 0;
  for (double w : weights) {
    MT_CHECK(w >= 0, "blending: weights must not be negative, got ", w);
    total += w;
  }
  MT_CHECK(total > 0, "blending: the weights sum to 0");
  for (double& w : weights) w /= total;
  BlendingIndices b;
  std::vector<int64_t> count(weights.size(), 0);
  for (int64_t s = 0; s < size; ++s) {
    double x = double(std::max<int64_t>(s, 1));
    size_t best = 0;
    double best_err = weights[0] * x - double(count[0]);
    for (size_t i = 1; i < weights.size(); ++i) {
      double err = weights[i] * x - double(count[i]);
      if (err > best_err) best_err = err, best = i;
    }
    b.dataset_index.push_back(uint8_t(best));
    b.dataset_sample_index.push_back(count[best]++);
  }
  return b;
}

BlendedDataset::BlendedDataset(std::vector<std::shared_ptr<const SampleDataset>> datasets,
                               std::vector<double> weights, int64_t size)
    : datasets_(std::move(datasets)) {
  MT_CHECK(!datasets_.empty() && datasets_.size() == weights.size(), "blending: ", datasets_.size(), " datasets but ",
           weights.size(), " weights");
  index_ = build_blending_indices(std::move(weights), size);
  for (size_t s = 0; s < index_.dataset_index.size(); ++s) {
    const auto& d = datasets_[index_.dataset_index[s]];
    MT_CHECK(index_.dataset_sample_index[s] < d->size(), "blending: component ", int(index_.dataset_index[s]),
             " has ", d->size(), " samples but the blend needs more");
  }
}

void BlendedDataset::sample(int64_t i, std::vector<int64_t>& out) const {
  MT_CHECK(i >= 0 && i < size(), "blended dataset: sample ", i, " out of range [0, ", size(), ")");
  datasets_[index_.dataset_index[size_t(i)]]->sample(index_.dataset_sample_index[size_t(i)], out);
}

DataPath parse_data_path(const std::vector<std::string>& words) {
  MT_CHECK(!words.empty(), "data_path is empty: give a dataset prefix, or weight prefix weight prefix ...");
  DataPath p;
  if (words.size() == 1) {
    p.prefixes = words;
    return p;
  }
  MT_CHECK(words.size() % 2 == 0, "data_path has ", words.size(),
           " entries; with several datasets it alternates weight and prefix (e.g. 0.3 dataA 0.7 dataB)");
  for (size_t i = 0; i < words.size(); i += 2) {
    try {
      size_t used = 0;
      double w = std::stod(words[i], &used);
      MT_CHECK(used == words[i].size() && w >= 0, "");
      p.weights.push_back(w);
    } catch (const std::exception&) {
      throw Error("data_path entry " + std::to_string(i + 1) + " ('" + words[i] +
                  "') must be a weight: the list alternates weight and prefix");
    }
    p.prefixes.push_back(words[i + 1]);
  }
  return p;
}

std::array<std::shared_ptr<const SampleDataset>, 3> build_train_valid_test(const DataPath& path,
                                                                           const std::string& split,
                                                                           std::array<int64_t, 3> num_samples,
                                                                           int64_t seq_length, uint32_t seed,
                                                                           bool use_cache, const std::string& cache_dir) {
  static const char* names[3] = {"train", "valid", "test"};
  auto build_one = [&](const std::string& prefix, std::array<int64_t, 3> counts) {
    auto data = std::make_shared<const IndexedDataset>(prefix);
    std::array<int64_t, 4> b = split_boundaries(split, data->num_sequences());
    std::array<std::shared_ptr<const SampleDataset>, 3> out;
    for (int k = 0; k < 3; ++k)
      if (b[k + 1] > b[k] && counts[k] > 0)
        out[k] = std::make_shared<GptDataset>(data, names[k], b[k], b[k + 1], counts[k], seq_length, seed, use_cache,
                                              cache_dir);
    return out;
  };
  if (path.prefixes.size() == 1) return build_one(path.prefixes[0], num_samples);

  double total = 0;
  for (double w : path.weights) total += w;
  MT_CHECK(total > 0, "data_path weights sum to 0");
  std::vector<std::array<std::shared_ptr<const SampleDataset>, 3>> parts;
  std::array<int64_t, 3> blended_size{0, 0, 0};
  for (size_t i = 0; i < path.prefixes.size(); ++i) {
    std::array<int64_t, 3> counts;
    for (int k = 0; k < 3; ++k) {
      counts[k] = int64_t(std::ceil(double(num_samples[k]) * path.weights[i] / total * 1.005));
      blended_size[k] += counts[k];
    }
    parts.push_back(build_one(path.prefixes[i], counts));
  }
  std::array<std::shared_ptr<const SampleDataset>, 3> out;
  for (int k = 0; k < 3; ++k) {
    if (num_samples[k] <= 0) continue;
    std::vector<std::shared_ptr<const SampleDataset>> ds;
    for (auto& p : parts) {
      MT_CHECK(p[k] != nullptr, "data_path: the ", names[k], " split of one of the blended datasets is empty (split '",
               split, "')");
      ds.push_back(p[k]);
    }
    out[k] = std::make_shared<BlendedDataset>(ds, path.weights, blended_size[k]);
  }
  return out;
}

}  // namespace mt::data
