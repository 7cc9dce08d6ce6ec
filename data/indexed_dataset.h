// Megatron's "mmap" indexed dataset: <prefix>.idx + <prefix>.bin, byte-compatible with
// Megatron-LM / Megatron-DeepSpeed (megatron/data/indexed_dataset.py, MMapIndexedDataset; docs/data.md).
//   .idx: "MMIDIDX\0\0", u64 version 1, u8 dtype code, u64 S sequences, u64 D doc-index entries,
//         i32 sizes[S], i64 pointers[S] (byte offsets into .bin), i64 doc_idx[D]
//   .bin: the token ids of all sequences, concatenated, little-endian, no header
// The reader maps both files and checks every invariant up front, so a bad file fails at open
// with its name and the offending entry, never later with a crash.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "data/mapped_file.h"

namespace mt::data {

// Megatron's dtype codes.
enum class TokenDType : uint8_t { U8 = 1, I8 = 2, I16 = 3, I32 = 4, I64 = 5, F64 = 6, F32 = 7, U16 = 8 };
size_t token_dtype_size(TokenDType t);
const char* token_dtype_name(TokenDType t);
// uint16 when the (unpadded) vocabulary has fewer than 65500 entries, else int32 (as Megatron).
TokenDType token_dtype_for_vocab(int64_t vocab_size);

// A read-only array of T inside a mapped file at any (possibly unaligned) address: the .idx
// arrays start at byte 34, so they are not aligned for int32/int64 access.
template <class T>
class UnalignedArray {
 public:
  UnalignedArray() = default;
  UnalignedArray(const unsigned char* p, size_t n) : p_(p), n_(n) {}
  T operator[](size_t i) const {
    T v;
    std::memcpy(&v, p_ + i * sizeof(T), sizeof(T));
    return v;
  }
  size_t size() const { return n_; }
  std::vector<T> to_vector() const {
    std::vector<T> v(n_);
    if (n_) std::memcpy(v.data(), p_, n_ * sizeof(T));
    return v;
  }

 private:
  const unsigned char* p_ = nullptr;
  size_t n_ = 0;
};

class IndexedDataset {
 public:
  explicit IndexedDataset(const std::string& prefix);
  const std::string& prefix() const { return prefix_; }
  int64_t num_sequences() const { return int64_t(sizes_.size()); }
  const UnalignedArray<int32_t>& sizes() const { return sizes_; }
  const UnalignedArray<int64_t>& pointers() const { return pointers_; }
  const UnalignedArray<int64_t>& doc_idx() const { return doc_idx_; }
  TokenDType dtype() const { return dtype_; }
  int64_t num_tokens() const { return total_tokens_; }

  // Appends tokens [offset, offset + length) of sequence i to out (converted to int64);
  // length < 0 reads to the end of the sequence.
  void read(int64_t i, int64_t offset, int64_t length, std::vector<int64_t>& out) const;
  std::vector<int64_t> sequence(int64_t i) const;
  // Zero-copy view of sequence i's raw bytes in the mapped .bin.
  std::span<const unsigned char> raw(int64_t i) const;

 private:
  void check_index();  // every invariant of the mapped pair; throws mt::Error naming the file and entry

  std::string prefix_;
  std::unique_ptr<MappedFile> idx_, bin_;
  TokenDType dtype_;
  UnalignedArray<int32_t> sizes_;
  UnalignedArray<int64_t> pointers_, doc_idx_;
  int64_t total_tokens_ = 0;
};

// Writes a dataset; nothing appears under the final names until finalize() succeeds (both files
// are written to temporary names, synced, then renamed). Destroyed unfinalized, it removes them.
class IndexedDatasetWriter {
 public:
  IndexedDatasetWriter(const std::string& prefix, TokenDType dtype);
  ~IndexedDatasetWriter();
  IndexedDatasetWriter(const IndexedDatasetWriter&) = delete;
  IndexedDatasetWriter& operator=(const IndexedDatasetWriter&) = delete;

  void add_sequence(std::span<const int32_t> tokens);
  void end_document();  // appends a document boundary (sequence count so far)
  void finalize();

 private:
  std::string prefix_, bin_tmp_, idx_tmp_;
  TokenDType dtype_;
  std::FILE* bin_ = nullptr;
  std::vector<int32_t> sizes_;
  std::vector<int64_t> doc_idx_{0};
  std::vector<unsigned char> buffer_;
  bool finalized_ = false;
};

}  // namespace mt::data
