// UTF-8 decoding and the Unicode classes GPT-2's pre-tokenizer needs (letters \p{L}, numbers
// \p{N}, whitespace \s), from Debian's utf8proc. Invalid UTF-8 never stops anything: each invalid
// byte decodes as one "other" character of length 1, so every byte of any input is kept.
#pragma once

#include <cstdint>
#include <string_view>

namespace mt::data {

enum class CharClass : uint8_t { Letter, Number, Space, Other };

struct DecodedChar {
  int32_t codepoint;  // -1 for an invalid byte
  int32_t length;     // bytes consumed (>= 1)
};

// Decodes the character starting at text[pos] (pos < text.size()).
DecodedChar decode_utf8(std::string_view text, size_t pos);

// Letter = Lu Ll Lt Lm Lo; Number = Nd Nl No; Space = Unicode White_Space; Other = the rest
// (including invalid bytes).
CharClass char_class(int32_t codepoint);

// Appends the UTF-8 encoding of a code point.
void append_utf8(std::string& out, int32_t codepoint);

}  // namespace mt::data
