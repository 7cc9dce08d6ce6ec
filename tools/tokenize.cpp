// `moetrain tokenize`: GPT-2 BPE on stdin.
//   plain:            text in, ids out (space separated, one line)
//   --jsonl:          {"text": ...} per line in, {"ids": [...]} per line out
//   --decode:         the reverse of either
#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/gpt2_tokenizer.h"
#include "tools/args.h"
#include "tools/command.h"

namespace mt::cli {
namespace {

const char* kTokenizeHelp =
    "usage: moetrain tokenize [--vocab-file F] [--merge-file F] [--jsonl] [--json-key KEY] [--decode]\n\n"
    "GPT-2 byte-level BPE, byte-exact with GPT-2 and Megatron's GPT2BPETokenizer.\n"
    "  (default)     read text on stdin, print its token ids on one line\n"
    "  --jsonl       read one JSON object per line, encode its KEY (default text), print {\"ids\":[...]}\n"
    "  --decode      the reverse: ids (or {\"ids\":[...]} lines with --jsonl) to text\n"
    "  --vocab-file  encoder.json / gpt2-vocab.json (default: the bundled GPT-2 file)\n"
    "  --merge-file  vocab.bpe / gpt2-merges.txt (default: the bundled GPT-2 file)\n";

std::vector<int32_t> parse_ids(const std::string& text, const std::string& where) {
  std::vector<int32_t> ids;
  std::istringstream in(text);
  std::string word;
  while (in >> word) {
    try {
      size_t used = 0;
      long long v = std::stoll(word, &used);
      if (used == word.size()) {
        ids.push_back(int32_t(v));
        continue;
      }
    } catch (const std::exception&) {
    }
    throw Error("--decode: " + where + ": '" + word + "' is not a token id");
  }
  return ids;
}

}  // namespace

int run_tokenize(const Args& args) {
  ArgParser p("tokenize", {"vocab-file", "merge-file", "json-key"}, {"jsonl", "decode", "help"});
  p.parse(args);
  if (p.flag("help")) {
    std::printf("%s", kTokenizeHelp);
    return 0;
  }
  // the bundled GPT-2 files unless both are given (a lone binary without its assets then works)
  data::Gpt2Tokenizer tok(p.has("vocab-file") ? p.get("vocab-file") : data::Gpt2Tokenizer::default_vocab_file(),
                          p.has("merge-file") ? p.get("merge-file") : data::Gpt2Tokenizer::default_merge_file());
  std::string key = p.get("json-key", "text");
  std::ios::sync_with_stdio(false);
  if (!p.flag("jsonl")) {
    std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (p.flag("decode")) {
      std::cout << tok.decode(parse_ids(input, "stdin"));
    } else {
      std::vector<int32_t> ids = tok.encode(input);
      for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
      std::cout << "\n";
    }
    return 0;
  }
  std::string line;
  int64_t line_no = 0;
  while (std::getline(std::cin, line)) {
    ++line_no;
    if (line.empty()) continue;
    nlohmann::json obj;
    try {
      obj = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw Error("stdin line " + std::to_string(line_no) + " is not JSON: " + e.what());
    }
    if (p.flag("decode")) {
      MT_CHECK(obj.is_object() && obj.contains("ids") && obj["ids"].is_array(), "--decode: stdin line ", line_no,
               " has no \"ids\" array");
      std::vector<int32_t> ids;
      for (auto& v : obj["ids"]) {
        MT_CHECK(v.is_number_integer(), "--decode: stdin line ", line_no, ": ids must be integers");
        ids.push_back(v.get<int32_t>());
      }
      std::cout << nlohmann::json{{key, tok.decode(ids)}}.dump() << "\n";
    } else {
      MT_CHECK(obj.is_object() && obj.contains(key) && obj[key].is_string(), "stdin line ", line_no,
               " has no string \"", key, "\" (use --json-key to choose the key)");
      std::cout << nlohmann::json{{"ids", tok.encode(obj[key].get<std::string>())}}.dump() << "\n";
    }
  }
  return 0;
}

}  // namespace mt::cli
