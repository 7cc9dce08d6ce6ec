#include "data/gpt2_tokenizer.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/pretokenize.h"
#include "data/unicode.h"
#include "runtime/assets.h"
#include "runtime/error.h"

namespace mt::data {
namespace {

std::string read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  MT_CHECK(in, "cannot read the ", what, " '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// GPT-2's bytes_to_unicode: bytes 33-126, 161-172, 174-255 map to the same code point; the other
// 68 bytes, ascending, to U+0100, U+0101, ... Returns the code point of each byte.
std::array<int32_t, 256> byte_to_codepoint() {
  std::array<int32_t, 256> table{};
  int32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    table[b] = printable ? b : next++;
  }
  return table;
}

// Token string (as in encoder.json) -> the bytes it stands for; false if a character is not one
// of the 256 byte symbols.
bool token_to_bytes(const std::string& token, const std::unordered_map<int32_t, uint8_t>& cp_to_byte,
                    std::string& bytes) {
  bytes.clear();
  for (size_t pos = 0; pos < token.size();) {
    DecodedChar d = decode_utf8(token, pos);
    auto it = cp_to_byte.find(d.codepoint);
    if (it == cp_to_byte.end()) return false;
    bytes.push_back(char(it->second));
    pos += size_t(d.length);
  }
  return true;
}

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

}  // namespace

std::string Gpt2Tokenizer::default_vocab_file() { return asset_path("gpt2/encoder.json"); }
std::string Gpt2Tokenizer::default_merge_file() { return asset_path("gpt2/vocab.bpe"); }

Gpt2Tokenizer::Gpt2Tokenizer(const std::string& vocab_file, const std::string& merge_file) {
  std::array<int32_t, 256> b2c = byte_to_codepoint();
  std::unordered_map<int32_t, uint8_t> c2b;
  for (int b = 0; b < 256; ++b) c2b[b2c[b]] = uint8_t(b);

  // --- vocabulary: {"token": id, ...}
  nlohmann::json vocab;
  try {
    vocab = nlohmann::json::parse(read_file(vocab_file, "vocabulary file"));
  } catch (const nlohmann::json::exception& e) {
    throw Error("vocabulary file '" + vocab_file + "' is not valid JSON: " + e.what());
  }
  MT_CHECK(vocab.is_object() && !vocab.empty(), "vocabulary file '", vocab_file,
           "' must be a JSON object mapping token strings to ids (GPT-2's encoder.json)");
  id_bytes_.assign(vocab.size(), std::string());
  std::vector<bool> seen(vocab.size(), false);
  std::unordered_map<std::string, int32_t> bytes_to_id;
  std::string bytes;
  for (auto& [token, id_json] : vocab.items()) {
    MT_CHECK(id_json.is_number_integer(), "vocabulary file '", vocab_file, "': the id of token '", token,
             "' is not an integer");
    int64_t id = id_json.get<int64_t>();
    MT_CHECK(id >= 0 && id < int64_t(vocab.size()) && !seen[size_t(id)], "vocabulary file '", vocab_file,
             "': token '", token, "' has id ", id, ", but ids must be 0..", vocab.size() - 1, " and unique");
    seen[size_t(id)] = true;
    if (token == "<|endoftext|>") {
      eod_ = int32_t(id);
      id_bytes_[size_t(id)] = token;
      continue;
    }
    MT_CHECK(token_to_bytes(token, c2b, bytes), "vocabulary file '", vocab_file, "': token '", token,
             "' is not made of GPT-2 byte symbols");
    id_bytes_[size_t(id)] = bytes;
    bytes_to_id[bytes] = int32_t(id);
  }
  MT_CHECK(eod_ >= 0, "vocabulary file '", vocab_file, "' has no <|endoftext|> token");
  for (int b = 0; b < 256; ++b) {
    auto it = bytes_to_id.find(std::string(1, char(b)));
    MT_CHECK(it != bytes_to_id.end(), "vocabulary file '", vocab_file, "' lacks the symbol of byte ", b);
    byte_id_[b] = it->second;
  }

  // --- merges: "#version" header, then one "A B" per line, rank = line number
  std::string text = read_file(merge_file, "merge file");
  std::istringstream lines(text);
  std::string line, left, right;
  int64_t line_no = 0;
  int32_t rank = 0;
  while (std::getline(lines, line)) {
    ++line_no;
    if (line_no == 1 && line.rfind("#version", 0) == 0) continue;
    if (line.empty()) continue;
    size_t space = line.find(' ');
    MT_CHECK(space != std::string::npos && space > 0 && space + 1 < line.size() &&
                 line.find(' ', space + 1) == std::string::npos,
             "merge file '", merge_file, "' line ", line_no, ": expected two symbols separated by one space, got '",
             line, "'");
    std::string a, b;
    MT_CHECK(token_to_bytes(line.substr(0, space), c2b, a) && token_to_bytes(line.substr(space + 1), c2b, b),
             "merge file '", merge_file, "' line ", line_no, ": '", line, "' is not made of GPT-2 byte symbols");
    auto ia = bytes_to_id.find(a), ib = bytes_to_id.find(b), iab = bytes_to_id.find(a + b);
    MT_CHECK(ia != bytes_to_id.end() && ib != bytes_to_id.end() && iab != bytes_to_id.end(),
             "vocabulary and merges do not fit together: merge file '", merge_file, "' line ", line_no, " ('",
             line, "') names a symbol that is not in the vocabulary '", vocab_file, "'");
    merges_.emplace(pair_key(ia->second, ib->second), Merge{rank++, iab->second});
  }
  MT_CHECK(rank > 0, "merge file '", merge_file, "' holds no merges");
}

int64_t Gpt2Tokenizer::padded_vocab_size(int64_t divisible_by, int64_t tensor_parallel) const {
  MT_CHECK(divisible_by > 0 && tensor_parallel > 0, "make_vocab_size_divisible_by (", divisible_by,
           ") and the tensor-parallel size (", tensor_parallel, ") must be positive");
  int64_t multiple = divisible_by * tensor_parallel;
  return (vocab_size() + multiple - 1) / multiple * multiple;
}

const std::string& Gpt2Tokenizer::token_bytes(int32_t id) const {
  MT_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " is outside the vocabulary [0, ", vocab_size(), ")");
  return id_bytes_[size_t(id)];
}

// BPE of one piece: start from its bytes' symbols; repeatedly merge every non-overlapping
// occurrence of the lowest-ranked adjacent pair, left to right.
void Gpt2Tokenizer::bpe(std::string_view piece, std::vector<int32_t>& out) const {
  std::vector<int32_t> sym;
  sym.reserve(piece.size());
  for (unsigned char ch : piece) sym.push_back(byte_id_[ch]);
  while (sym.size() > 1) {
    int32_t best_rank = INT32_MAX, best_merged = -1;
    int32_t best_a = -1, best_b = -1;
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      auto it = merges_.find(pair_key(sym[i], sym[i + 1]));
      if (it != merges_.end() && it->second.rank < best_rank) {
        best_rank = it->second.rank;
        best_merged = it->second.merged;
        best_a = sym[i];
        best_b = sym[i + 1];
      }
    }
    if (best_merged < 0) break;
    size_t w = 0;
    for (size_t i = 0; i < sym.size();) {
      if (i + 1 < sym.size() && sym[i] == best_a && sym[i + 1] == best_b) {
        sym[w++] = best_merged;
        i += 2;
      } else {
        sym[w++] = sym[i++];
      }
    }
    sym.resize(w);
  }
  out.insert(out.end(), sym.begin(), sym.end());
}

void Gpt2Tokenizer::encode_append(std::string_view text, std::vector<int32_t>& ids) const {
  // Pieces repeat a lot (words): a per-thread cache of their encodings, reset when another
  // tokenizer uses the thread or it grows past a bound.
  thread_local std::unordered_map<std::string, std::vector<int32_t>> cache;
  thread_local const Gpt2Tokenizer* cache_owner = nullptr;
  if (cache_owner != this || cache.size() > (1u << 20)) {
    cache.clear();
    cache_owner = this;
  }
  std::vector<int32_t> piece_ids;
  for (std::string_view piece : gpt2_pretokenize(text)) {
    auto it = cache.find(std::string(piece));
    if (it == cache.end()) {
      piece_ids.clear();
      bpe(piece, piece_ids);
      it = cache.emplace(std::string(piece), piece_ids).first;
    }
    ids.insert(ids.end(), it->second.begin(), it->second.end());
  }
}

std::vector<int32_t> Gpt2Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  encode_append(text, ids);
  return ids;
}

std::string Gpt2Tokenizer::decode_bytes(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) out += token_bytes(id);
  return out;
}

std::string Gpt2Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string raw = decode_bytes(ids), out;
  out.reserve(raw.size());
  for (size_t pos = 0; pos < raw.size();) {
    DecodedChar d = decode_utf8(raw, pos);
    if (d.codepoint < 0) append_utf8(out, 0xFFFD);
    else out.append(raw, pos, size_t(d.length));
    pos += size_t(d.length);
  }
  return out;
}

}  // namespace mt::data
