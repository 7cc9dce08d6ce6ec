// GPT-2 byte-level BPE, byte-exact with GPT-2 and Megatron's GPT2BPETokenizer:
//   encode: pre-tokenize (data/pretokenize.h), map each piece's bytes to their 256 base symbols,
//           merge adjacent pairs by rank (lowest first, all non-overlapping occurrences left to
//           right) until no pair is in the merge table;
//   decode: concatenate each id's bytes.
// A literal "<|endoftext|>" in text is ordinary text (as in Megatron); only the caller appends
// the EOD id. Files: encoder.json (= Megatron's gpt2-vocab.json) and vocab.bpe (= gpt2-merges.txt).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mt::data {

class Gpt2Tokenizer {
 public:
  // Loads and cross-checks the two files; errors name the file and the entry that is wrong.
  Gpt2Tokenizer(const std::string& vocab_file, const std::string& merge_file);
  // The GPT-2 files shipped in the repository's assets/gpt2/.
  static std::string default_vocab_file();
  static std::string default_merge_file();

  std::vector<int32_t> encode(std::string_view text) const;
  void encode_append(std::string_view text, std::vector<int32_t>& ids) const;
  std::string decode_bytes(const std::vector<int32_t>& ids) const;  // raw bytes
  std::string decode(const std::vector<int32_t>& ids) const;        // invalid UTF-8 -> U+FFFD

  int64_t vocab_size() const { return int64_t(id_bytes_.size()); }  // 50257 for GPT-2
  int32_t eod() const { return eod_; }                               // id of <|endoftext|>
  // Megatron's padded size: the smallest multiple of divisible_by * tensor_parallel >= vocab_size.
  int64_t padded_vocab_size(int64_t divisible_by = 128, int64_t tensor_parallel = 1) const;
  const std::string& token_bytes(int32_t id) const;

 private:
  void bpe(std::string_view piece, std::vector<int32_t>& out) const;

  std::vector<std::string> id_bytes_;  // id -> the bytes it stands for
  int32_t byte_id_[256];               // byte -> id of its single-byte symbol
  struct Merge {
    int32_t rank, merged;
  };
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) -> rank, merged id
  int32_t eod_ = -1;
};

}  // namespace mt::data
