#include "data/gpt_dataset.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
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

// --- the index cache (Megatron-LM's naming): <dir>/<hash>.dsc holds the description of what was
// built (the data file's size and mtime, sequence range, samples, length, seed) and a checksum of
// each array file; <dir>/<hash>_{doc,sample,shuffle}_idx.npy hold the arrays. <hash> is a hash of
// the description, so a changed dataset or setting finds no cache and builds new arrays.

constexpr const char* kArrays[3] = {"doc_idx", "sample_idx", "shuffle_idx"};

std::string hex64(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)h);
  return buf;
}

// The whole file, or "" when it cannot be read (an absent cache).
std::string read_if_present(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The .dsc's "Checksum <array>.npy <16 hex digits>" line for `array`, or "" when absent.
std::string listed_checksum(const std::string& dsc_tail, const std::string& array) {
  std::istringstream lines(dsc_tail);
  std::string line, key = "Checksum " + array + ".npy ";
  while (std::getline(lines, line))
    if (line.size() == key.size() + 16 && line.compare(0, key.size(), key) == 0) return line.substr(key.size());
  return {};
}

// What reading a cache found: the arrays, nothing (no cache for this description), or damage
// (the file that is unreadable or whose checksum disagrees with the .dsc, and what is wrong).
struct IndexCacheRead {
  bool loaded = false;
  std::string damaged_file, damage;
};

// The description that keys a GPT dataset's cache.
std::string describe_gpt_indices(const IndexedDataset& data, const std::string& name, int64_t begin, int64_t end,
                                 int64_t num_samples, int64_t seq_length, uint32_t seed) {
  struct stat st {};
  std::string idx_path = data.prefix() + ".idx";
  ::stat(idx_path.c_str(), &st);
  std::ostringstream os;
  os << "GPT Dataset (moetrain index cache v2)\n\nData prefix " << data.prefix() << "\nData .idx bytes " << st.st_size
     << "\nData .idx mtime " << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec << "\nDataset name " << name
     << "\nSequences " << begin << " to " << end << "\nNumber of samples " << num_samples << "\nSequence length "
     << seq_length << "\nRandom seed " << seed << "\n";
  return os.str();
}

// <dir>/<16 hex digits of the description's hash>: the stem of the cache's files.
std::string index_cache_base(const std::string& dir, const std::string& description) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the description's bytes
  for (unsigned char c : description) h = (h ^ c) * 1099511628211ull;
  return (std::filesystem::path(dir) / hex64(h)).string();
}

// Reads the arrays of `base` into g's arrays when <base>.dsc holds `description`, checking each
// file's checksum; the values are checked by check_gpt_indices.
IndexCacheRead load_index_cache(const std::string& base, const std::string& description, GptIndices& g) {
  IndexCacheRead r;
  std::string dsc_path = base + ".dsc", dsc = read_if_present(dsc_path);
  if (dsc.empty()) return r;  // no cache for this description
  if (dsc.compare(0, description.size(), description) != 0) {
    // the file is named by the hash of its description: a different text there is damage
    r.damaged_file = dsc_path;
    r.damage = "it does not hold the description that its name is the hash of";
    return r;
  }
  std::string tail = dsc.substr(description.size());
  NpyArray arrays[3];
  for (int k = 0; k < 3; ++k) {
    std::string file = index_cache_file(base, kArrays[k]), want = listed_checksum(tail, kArrays[k]);
    if (want.empty()) {
      r.damaged_file = dsc_path;
      r.damage = std::string("it lists no checksum for ") + kArrays[k] + ".npy";
      return r;
    }
    try {
      arrays[k] = read_npy(file);
    } catch (const Error& e) {
      r.damaged_file = file;
      r.damage = e.what();
      std::string named = "'" + file + "' ";  // "'x.npy' is truncated" -> "it is truncated": name it once
      if (r.damage.starts_with(named)) r.damage.replace(0, named.size(), "it ");
      return r;
    }
    if (hex64(arrays[k].checksum) != want) {
      r.damaged_file = file;
      r.damage = "its checksum " + hex64(arrays[k].checksum) + " differs from the " + want + " in '" + dsc_path + "'";
      return r;
    }
    std::string descr = k == 0 ? "<i4" : "<i8";
    if (arrays[k].descr != descr) {
      r.damaged_file = file;
      r.damage = "it holds dtype " + arrays[k].descr + "; expected " + descr;
      return r;
    }
  }
  g.doc_idx = npy_values<int32_t>(arrays[0]);
  g.sample_idx = npy_values<int64_t>(arrays[1]);
  g.shuffle_idx = npy_values<int64_t>(arrays[2]);
  r.loaded = true;
  return r;
}

// Writes the three arrays, then the .dsc with their checksums, each under a temporary name and
// renamed (the .dsc last: it marks the cache complete). Throws mt::Error naming the file.
void save_index_cache(const std::string& base, const std::string& description, const GptIndices& g) {
  uint64_t sums[3] = {write_npy(index_cache_file(base, kArrays[0]), "<i4", {int64_t(g.doc_idx.size())},
                                g.doc_idx.data(), g.doc_idx.size() * 4),
                      write_npy(index_cache_file(base, kArrays[1]), "<i8", {int64_t(g.sample_idx.size() / 2), 2},
                                g.sample_idx.data(), g.sample_idx.size() * 8),
                      write_npy(index_cache_file(base, kArrays[2]), "<i8", {int64_t(g.shuffle_idx.size())},
                                g.shuffle_idx.data(), g.shuffle_idx.size() * 8)};
  std::string dsc = description + "\n";
  for (int k = 0; k < 3; ++k) dsc += std::string("Checksum ") + kArrays[k] + ".npy " + hex64(sums[k]) + "\n";
  write_file_atomically(base + ".dsc", dsc);  // last: it marks the cache complete
}

}  // namespace

std::string index_cache_file(const std::string& base, const std::string& array) {
  return base + "_" + array + ".npy";
}

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

GptIndices plan_gpt_indices(const std::vector<int32_t>& sizes, int64_t begin, int64_t end, int64_t num_samples,
                            int64_t seq_length) {
  MT_CHECK(begin >= 0 && begin < end && end <= int64_t(sizes.size()), "GPT dataset: sequence range [", begin, ", ", end,
           ") is empty or outside the ", sizes.size(), " sequences of the data");
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
  return g;
}

GptIndices build_gpt_indices(const std::vector<int32_t>& sizes, int64_t begin, int64_t end, int64_t num_samples,
                             int64_t seq_length, uint32_t seed) {
  GptIndices g = plan_gpt_indices(sizes, begin, end, num_samples, seq_length);
  int64_t t = g.tokens_per_epoch;
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

std::optional<GptIndexProblem> check_gpt_indices(const GptIndices& g, const std::vector<int32_t>& sizes, int64_t begin,
                                                 int64_t end, int64_t seq_length) {
  auto problem = [](const char* array, const auto&... parts) {
    return std::optional<GptIndexProblem>(GptIndexProblem{array, detail::concat(array, " ", parts...)});
  };
  // doc_idx: every sequence of [begin, end), once per epoch
  int64_t n = end - begin, docs = int64_t(g.doc_idx.size());
  if (docs != n * g.num_epochs)
    return problem("doc_idx", "holds ", docs, " entries; ", n, " sequences x ", g.num_epochs, " epochs need ",
                   n * g.num_epochs);
  std::vector<int64_t> seen(size_t(n), 0);
  for (int64_t i = 0; i < docs; ++i) {
    int64_t s = g.doc_idx[size_t(i)];
    if (s < begin || s >= end)
      return problem("doc_idx", "entry ", i, " is ", s, ", outside the split's sequences [", begin, ", ", end, ")");
    if (++seen[size_t(s - begin)] > g.num_epochs)
      return problem("doc_idx", "holds sequence ", s, " more than ", g.num_epochs, " times (once per epoch)");
  }
  // sample_idx: rows (position in doc_idx, offset) from (0, 0), each sample seq_length + 1 tokens
  int64_t total = (g.num_epochs * g.tokens_per_epoch - 1) / seq_length;
  const std::vector<int64_t>& rows = g.sample_idx;
  if (int64_t(rows.size()) != 2 * (total + 1))
    return problem("sample_idx", "holds ", rows.size() / 2, " rows; ", total, " samples need ", total + 1);
  if (rows[0] != 0 || rows[1] != 0)
    return problem("sample_idx", "row 0 is (", rows[0], ", ", rows[1], ") instead of (0, 0)");
  auto size_at = [&](int64_t p) { return int64_t(sizes[size_t(g.doc_idx[size_t(p)])]); };
  for (int64_t k = 1; k <= total; ++k) {
    int64_t p0 = rows[size_t(2 * k - 2)], o0 = rows[size_t(2 * k - 1)];
    int64_t p = rows[size_t(2 * k)], o = rows[size_t(2 * k + 1)];
    if (p < p0 || p >= docs)
      return problem("sample_idx", "row ", k, " points at doc_idx position ", p, ", outside [", p0, ", ", docs, ")");
    if (o < 0 || o >= size_at(p))
      return problem("sample_idx", "row ", k, " has offset ", o, " in a sequence of ", size_at(p), " tokens");
    int64_t tokens = o + 1 - o0;  // from (p0, o0) to (p, o), both included
    for (int64_t q = p0; q < p; ++q) tokens += size_at(q);
    if (tokens != seq_length + 1)
      return problem("sample_idx", "rows ", k - 1, " and ", k, " span ", tokens, " tokens instead of ", seq_length + 1,
                     " (sample ", k - 1, ")");
  }
  // shuffle_idx: each sample once
  if (int64_t(g.shuffle_idx.size()) != total)
    return problem("shuffle_idx", "holds ", g.shuffle_idx.size(), " entries; expected ", total);
  std::vector<bool> served(size_t(total), false);
  for (int64_t i = 0; i < total; ++i) {
    int64_t v = g.shuffle_idx[size_t(i)];
    if (v < 0 || v >= total)
      return problem("shuffle_idx", "entry ", i, " is ", v, ", outside the ", total, " samples [0, ", total, ")");
    if (served[size_t(v)]) return problem("shuffle_idx", "holds sample ", v, " twice (entry ", i, ")");
    served[size_t(v)] = true;
  }
  return std::nullopt;
}

GptDataset::GptDataset(std::shared_ptr<const IndexedDataset> data, const std::string& name, int64_t begin, int64_t end,
                       int64_t num_samples, int64_t seq_length, uint32_t seed, bool use_cache,
                       const std::string& cache_dir)
    : data_(std::move(data)), seq_length_(seq_length) {
  std::vector<int32_t> sizes = data_->sizes().to_vector();
  if (!use_cache) {
    indices_ = build_gpt_indices(sizes, begin, end, num_samples, seq_length, seed);
    cache_status_ = "built";
    return;
  }
  std::string description = describe_gpt_indices(*data_, name, begin, end, num_samples, seq_length, seed);
  std::filesystem::path dir = !cache_dir.empty() ? std::filesystem::path(cache_dir)
                                                 : std::filesystem::path(data_->prefix()).parent_path() / "index-cache";
  std::string base = index_cache_base(dir.string(), description);
  indices_ = plan_gpt_indices(sizes, begin, end, num_samples, seq_length);
  IndexCacheRead cached = load_index_cache(base, description, indices_);
  if (cached.loaded) {
    std::optional<GptIndexProblem> problem = check_gpt_indices(indices_, sizes, begin, end, seq_length);
    if (!problem) {
      cache_status_ = "loaded " + base;
      return;
    }
    cached.damaged_file = index_cache_file(base, problem->array);
    cached.damage = problem->what;
  }
  std::string damaged;
  if (!cached.damaged_file.empty()) {
    damaged = " (replacing a damaged cache: '" + cached.damaged_file + "': " + cached.damage + ")";
    std::fprintf(stderr, "moetrain: index cache file '%s' is damaged (%s): rebuilding it\n",
                 cached.damaged_file.c_str(), cached.damage.c_str());
  }
  indices_ = build_gpt_indices(sizes, begin, end, num_samples, seq_length, seed);
  try {
    std::filesystem::create_directories(dir);
    save_index_cache(base, description, indices_);
    cache_status_ = "built, cached in " + base + damaged;
  } catch (const std::exception& e) {
    cache_status_ = std::string("built (not cached: ") + e.what() + ")" + damaged;
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

BlendedDataset::BlendedDataset(std::vector<std::shared_ptr<const SampleDataset>> datasets, std::vector<double> weights,
                               int64_t size)
    : datasets_(std::move(datasets)) {
  MT_CHECK(!datasets_.empty() && datasets_.size() == weights.size(), "blending: ", datasets_.size(), " datasets but ",
           weights.size(), " weights");
  index_ = build_blending_indices(std::move(weights), size);
  for (size_t s = 0; s < index_.dataset_index.size(); ++s) {
    const auto& d = datasets_[index_.dataset_index[s]];
    MT_CHECK(index_.dataset_sample_index[s] < d->size(), "blending: component ", int(index_.dataset_index[s]), " has ",
             d->size(), " samples but the blend needs more");
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

std::array<std::shared_ptr<const SampleDataset>, 3> build_train_valid_test(
    const DataPath& path, const std::string& split, std::array<int64_t, 3> num_samples, int64_t seq_length,
    uint32_t seed, bool use_cache, const std::string& cache_dir) {
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
  // As Megatron: a split that is empty in every dataset (a 0 in the split string) is absent from
  // the blend. Empty in some datasets only (too few sequences for its share) is an error: the
  // blend's weights would no longer hold (Megatron-DeepSpeed fails on an assertion there).
  std::array<std::shared_ptr<const SampleDataset>, 3> out;
  for (int k = 0; k < 3; ++k) {
    if (num_samples[k] <= 0) continue;
    std::vector<std::shared_ptr<const SampleDataset>> ds;
    for (auto& p : parts)
      if (p[k]) ds.push_back(p[k]);
    if (ds.empty()) continue;
    for (size_t i = 0; i < parts.size(); ++i)
      MT_CHECK(parts[i][k] != nullptr, "data_path: split '", split, "' gives '", path.prefixes[i], "' no ", names[k],
               " sequences (too few for that share) while the other blended datasets have some: give ", names[k],
               " a larger share in --split, add documents to '", path.prefixes[i], "', or make the ", names[k],
               " share 0 to build no ", names[k], " set");
    out[k] = std::make_shared<BlendedDataset>(ds, path.weights, blended_size[k]);
  }
  return out;
}

}  // namespace mt::data
