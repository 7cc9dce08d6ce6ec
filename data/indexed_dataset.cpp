#include "data/indexed_dataset.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <climits>
#include <cstdio>

#include "runtime/error.h"

namespace mt::data {

static_assert(std::endian::native == std::endian::little, "the .idx/.bin formats are little-endian");

namespace {

constexpr unsigned char kMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', 0, 0};
constexpr size_t kHeaderBytes = 34;

template <class T>
T load(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

bool known_dtype(uint8_t code) {
  return code >= 1 && code <= 8;
}

// A float token as an id, or -1 when it is none (NaN, negative, too large): never an undefined cast.
int64_t float_token(double v) {
  return v >= 0 && v < 2147483648.0 ? int64_t(v) : -1;
}

// Token i of a sequence stored with dtype t, as int64.
int64_t load_token(const unsigned char* p, TokenDType t) {
  switch (t) {
    case TokenDType::U8:
      return *p;
    case TokenDType::I8:
      return int8_t(*p);
    case TokenDType::I16:
      return load<int16_t>(p);
    case TokenDType::I32:
      return load<int32_t>(p);
    case TokenDType::I64:
      return load<int64_t>(p);
    case TokenDType::F64:
      return float_token(load<double>(p));
    case TokenDType::F32:
      return float_token(load<float>(p));
    case TokenDType::U16:
      return load<uint16_t>(p);
  }
  return 0;
}

void write_all(std::FILE* f, const void* data, size_t bytes, const std::string& path) {
  if (bytes && std::fwrite(data, 1, bytes, f) != bytes)
    throw Error("cannot write '" + path + "' (disk full?): " + std::strerror(errno));
}

void sync_and_close(std::FILE*& f, const std::string& path) {
  bool ok = std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  int err = errno;
  ok = (std::fclose(f) == 0) && ok;
  f = nullptr;
  if (!ok) throw Error("cannot write '" + path + "' (disk full?): " + std::strerror(err));
}

}  // namespace

size_t token_dtype_size(TokenDType t) {
  switch (t) {
    case TokenDType::U8:
    case TokenDType::I8:
      return 1;
    case TokenDType::I16:
    case TokenDType::U16:
      return 2;
    case TokenDType::I32:
    case TokenDType::F32:
      return 4;
    case TokenDType::I64:
    case TokenDType::F64:
      return 8;
  }
  return 0;
}

const char* token_dtype_name(TokenDType t) {
  static const char* names[] = {"?", "uint8", "int8", "int16", "int32", "int64", "float64", "float32", "uint16"};
  return names[int(t) <= 8 ? int(t) : 0];
}

TokenDType token_dtype_for_vocab(int64_t vocab_size) {
  return vocab_size < 65500 ? TokenDType::U16 : TokenDType::I32;
}

IndexedDataset::IndexedDataset(const std::string& prefix) : prefix_(prefix) {
  std::string idx_path = prefix + ".idx", bin_path = prefix + ".bin";
  try {
    idx_ = std::make_unique<MappedFile>(idx_path);
    bin_ = std::make_unique<MappedFile>(bin_path);
  } catch (const Error& e) {
    bool suffixed = prefix.ends_with(".bin") || prefix.ends_with(".idx");
    throw Error(std::string(e.what()) +
                (suffixed
                     ? " (give the dataset's prefix, without the suffix: '" + prefix.substr(0, prefix.size() - 4) + "')"
                     : " (a dataset is a .bin/.idx pair named by its prefix: `moetrain preprocess --output-prefix "
                       "P` writes P_text_document.bin/.idx; see docs/data.md)"));
  }
  try {
    check_index();
  } catch (const Error& e) {
    throw Error(std::string(e.what()) +
                "; re-create the dataset with `moetrain preprocess` (or Megatron's tools/preprocess_data.py)");
  }
}

void IndexedDataset::check_index() {
  std::string idx_path = prefix_ + ".idx", bin_path = prefix_ + ".bin";
  const unsigned char* p = idx_->data();
  size_t n = idx_->size();
  MT_CHECK(n >= kHeaderBytes, "'", idx_path, "' is ", n,
           " bytes, shorter than the 34-byte header: not a Megatron .idx");
  MT_CHECK(std::memcmp(p, kMagic, 9) == 0, "'", idx_path,
           "' does not start with MMIDIDX: not a Megatron mmap .idx (a legacy 'lazy'/'cached' index starts with "
           "TNTIDX)");
  uint64_t version = load<uint64_t>(p + 9);
  MT_CHECK(version == 1, "'", idx_path, "' has format version ", version, " at byte 9; only version 1 exists");
  uint8_t code = p[17];
  MT_CHECK(known_dtype(code), "'", idx_path, "' has unknown dtype code ", int(code),
           " at byte 17 (known: 1-8, Megatron's codes)");
  dtype_ = TokenDType(code);
  uint64_t s = load<uint64_t>(p + 18), d = load<uint64_t>(p + 26);
  MT_CHECK(s < (uint64_t(1) << 40) && d < (uint64_t(1) << 40) && d >= 1, "'", idx_path, "' declares ", s,
           " sequences and ", d, " document-index entries (bytes 18-33): not plausible, the file is damaged");
  size_t need = kHeaderBytes + 12 * s + 8 * d;
  MT_CHECK(n == need || n == need + s, "'", idx_path, "' is ", n, " bytes but its header (", s, " sequences, ", d,
           " document-index entries) needs ", need, ": the file is truncated or damaged");
  sizes_ = UnalignedArray<int32_t>(p + kHeaderBytes, s);
  pointers_ = UnalignedArray<int64_t>(p + kHeaderBytes + 4 * s, s);
  doc_idx_ = UnalignedArray<int64_t>(p + kHeaderBytes + 12 * s, d);

  size_t item = token_dtype_size(dtype_);
  uint64_t expected_pointer = 0;
  for (size_t i = 0; i < s; ++i) {
    int32_t size = sizes_[i];
    int64_t ptr = pointers_[i];
    MT_CHECK(size >= 0, "'", idx_path, "': sequence ", i, " has negative size ", size);
    MT_CHECK(uint64_t(ptr) == expected_pointer, "'", idx_path, "': pointer of sequence ", i, " is ", ptr,
             " but the sizes before it put it at byte ", expected_pointer);
    // saturating at 2^63 (no wrap-around whatever the sizes): the .bin length check then fails
    expected_pointer = std::min(expected_pointer + uint64_t(size) * item, uint64_t(1) << 63);
    total_tokens_ += size;
  }
  MT_CHECK(bin_->size() == expected_pointer, "'", bin_path, "' is ", bin_->size(), " bytes but '", idx_path,
           "' describes ", expected_pointer, " bytes (", total_tokens_, " tokens of ", token_dtype_name(dtype_), ")",
           bin_->size() < expected_pointer ? ": the .bin is truncated" : ": the two files do not belong together");
  MT_CHECK(doc_idx_[0] == 0 && uint64_t(doc_idx_[d - 1]) == s, "'", idx_path,
           "': the document index must run from 0 to the sequence count ", s, "; it runs from ", doc_idx_[0], " to ",
           doc_idx_[d - 1]);
  for (size_t i = 1; i < d; ++i)
    MT_CHECK(doc_idx_[i] >= doc_idx_[i - 1], "'", idx_path, "': document index entry ", i, " (", doc_idx_[i],
             ") is smaller than the one before it (", doc_idx_[i - 1], ")");
}

std::span<const unsigned char> IndexedDataset::raw(int64_t i) const {
  MT_CHECK(i >= 0 && i < num_sequences(), "'", prefix_, "': sequence ", i, " out of range [0, ", num_sequences(), ")");
  size_t item = token_dtype_size(dtype_);
  return {bin_->data() + pointers_[size_t(i)], size_t(sizes_[size_t(i)]) * item};
}

void IndexedDataset::read(int64_t i, int64_t offset, int64_t length, std::vector<int64_t>& out) const {
  std::span<const unsigned char> bytes = raw(i);
  size_t item = token_dtype_size(dtype_);
  int64_t size = sizes_[size_t(i)];
  if (length < 0) length = size - offset;
  MT_CHECK(offset >= 0 && offset + length <= size, "'", prefix_, "': tokens [", offset, ", ", offset + length,
           ") of sequence ", i, " requested, but it has ", size);
  for (int64_t k = offset; k < offset + length; ++k) {
    int64_t token = load_token(bytes.data() + size_t(k) * item, dtype_);
    MT_CHECK(token >= 0 && token <= INT32_MAX, "'", prefix_, ".bin': token ", k, " of sequence ", i, " is ", token,
             ", not a token id: the file is damaged; re-create the dataset with `moetrain preprocess`");
    out.push_back(token);
  }
}

std::vector<int64_t> IndexedDataset::sequence(int64_t i) const {
  std::vector<int64_t> out;
  read(i, 0, -1, out);
  return out;
}

IndexedDatasetWriter::IndexedDatasetWriter(const std::string& prefix, TokenDType dtype)
    : prefix_(prefix), dtype_(dtype) {
  MT_CHECK(dtype == TokenDType::U16 || dtype == TokenDType::I32, "indexed dataset writer: token dtype ",
           token_dtype_name(dtype), " not supported (uint16 or int32)");
  std::string tag = ".tmp-" + std::to_string(::getpid());
  bin_tmp_ = prefix + ".bin" + tag;
  idx_tmp_ = prefix + ".idx" + tag;
  bin_ = std::fopen(bin_tmp_.c_str(), "wb");
  MT_CHECK(bin_, "cannot create '", bin_tmp_, "': ", std::strerror(errno));
}

IndexedDatasetWriter::~IndexedDatasetWriter() {
  if (finalized_) return;
  if (bin_) std::fclose(bin_);
  std::remove(bin_tmp_.c_str());
  std::remove(idx_tmp_.c_str());
}

void IndexedDatasetWriter::add_sequence(std::span<const int32_t> tokens) {
  MT_CHECK(!finalized_, "indexed dataset writer: add_sequence after finalize");
  size_t item = token_dtype_size(dtype_);
  buffer_.resize(tokens.size() * item);
  for (size_t k = 0; k < tokens.size(); ++k) {
    if (dtype_ == TokenDType::U16) {
      MT_CHECK(tokens[k] >= 0 && tokens[k] <= 65535, "token id ", tokens[k], " does not fit the uint16 .bin");
      uint16_t v = uint16_t(tokens[k]);
      std::memcpy(buffer_.data() + k * 2, &v, 2);
    } else {
      std::memcpy(buffer_.data() + k * 4, &tokens[k], 4);
    }
  }
  write_all(bin_, buffer_.data(), buffer_.size(), bin_tmp_);
  sizes_.push_back(int32_t(tokens.size()));
}

void IndexedDatasetWriter::end_document() {
  doc_idx_.push_back(int64_t(sizes_.size()));
}

void IndexedDatasetWriter::finalize() {
  MT_CHECK(!finalized_, "indexed dataset writer: finalize called twice");
  sync_and_close(bin_, bin_tmp_);
  std::FILE* idx = std::fopen(idx_tmp_.c_str(), "wb");
  MT_CHECK(idx, "cannot create '", idx_tmp_, "': ", std::strerror(errno));
  uint64_t version = 1, s = sizes_.size(), d = doc_idx_.size();
  uint8_t code = uint8_t(dtype_);
  std::vector<int64_t> pointers(sizes_.size());
  int64_t ptr = 0;
  for (size_t i = 0; i < sizes_.size(); ++i) {
    pointers[i] = ptr;
    ptr += int64_t(sizes_[i]) * int64_t(token_dtype_size(dtype_));
  }
  try {
    write_all(idx, kMagic, 9, idx_tmp_);
    write_all(idx, &version, 8, idx_tmp_);
    write_all(idx, &code, 1, idx_tmp_);
    write_all(idx, &s, 8, idx_tmp_);
    write_all(idx, &d, 8, idx_tmp_);
    write_all(idx, sizes_.data(), 4 * s, idx_tmp_);
    write_all(idx, pointers.data(), 8 * s, idx_tmp_);
    write_all(idx, doc_idx_.data(), 8 * d, idx_tmp_);
    sync_and_close(idx, idx_tmp_);
  } catch (...) {
    if (idx) std::fclose(idx);
    throw;
  }
  // The .bin first: a reader opening the pair checks that they agree.
  std::string bin_final = prefix_ + ".bin", idx_final = prefix_ + ".idx";
  MT_CHECK(std::rename(bin_tmp_.c_str(), bin_final.c_str()) == 0, "cannot rename '", bin_tmp_, "' to '", bin_final,
           "': ", std::strerror(errno));
  MT_CHECK(std::rename(idx_tmp_.c_str(), idx_final.c_str()) == 0, "cannot rename '", idx_tmp_, "' to '", idx_final,
           "': ", std::strerror(errno));
  finalized_ = true;
}

}  // namespace mt::data
