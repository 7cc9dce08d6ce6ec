#include "data/pretokenize.h"

#include "data/unicode.h"

namespace mt::data {
namespace {

struct Char {
  size_t offset;
  int32_t codepoint;
  CharClass cls;
};

// The length in characters of a contraction at i ('s 't 're 've 'm 'll 'd), or 0.
size_t contraction_at(const std::vector<Char>& c, size_t i) {
  if (c[i].codepoint != '\'' || i + 1 >= c.size()) return 0;
  int32_t a = c[i + 1].codepoint;
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 < c.size()) {
    int32_t b = c[i + 2].codepoint;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  }
  return 0;
}

}  // namespace

std::vector<std::string_view> gpt2_pretokenize(std::string_view text) {
  std::vector<Char> c;
  c.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    DecodedChar d = decode_utf8(text, pos);
    c.push_back({pos, d.codepoint, char_class(d.codepoint)});
    pos += size_t(d.length);
  }
  auto offset = [&](size_t i) { return i < c.size() ? c[i].offset : text.size(); };
  // Index just past the run of characters of class k starting at i.
  auto run_end = [&](size_t i, auto&& in_class) {
    while (i < c.size() && in_class(c[i].cls)) ++i;
    return i;
  };

  std::vector<std::string_view> pieces;
  size_t i = 0;
  while (i < c.size()) {
    size_t end = 0;
    if (size_t n = contraction_at(c, i)) {
      end = i + n;
    } else {
      // " ?X+" for X = letters, numbers, other: an optional single space, then a run of X.
      size_t start = (c[i].codepoint == ' ' && i + 1 < c.size()) ? i + 1 : i;
      CharClass k = c[start].cls;
      if (k != CharClass::Space) end = run_end(start, [k](CharClass x) { return x == k; });
      if (end == 0) {
        // Whitespace: "\s+(?!\S)" leaves the run's last character to prefix what follows;
        // "\s+" takes a whole run (a single space before non-space, or the run at the end).
        size_t ws_end = run_end(i, [](CharClass x) { return x == CharClass::Space; });
        if (ws_end < c.size() && ws_end - i >= 2) ws_end -= 1;
        end = ws_end;
      }
    }
    pieces.emplace_back(text.substr(offset(i), offset(end) - offset(i)));
    i = end;
  }
  return pieces;
}

}  // namespace mt::data
