// GPT-2's pre-tokenizer: splits text into the pieces that BPE then encodes separately. It is
// the regex  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (first alternative that matches at each position wins) written out by hand over Unicode
// character classes (data/unicode.h). Pieces are views into the input; together they cover
// every byte of it, invalid UTF-8 included.
#pragma once

#include <string_view>
#include <vector>

namespace mt::data {

std::vector<std::string_view> gpt2_pretokenize(std::string_view text);

}  // namespace mt::data
