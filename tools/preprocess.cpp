// `moetrain preprocess`: a corpus to Megatron .bin/.idx (Megatron's tools/preprocess_data.py).
#include "data/preprocess.h"

#include <cstdio>

#include "tools/args.h"
#include "tools/command.h"

namespace mt::cli {
namespace {

const char* kPreprocessHelp =
    "usage: moetrain preprocess --input FILE [FILE...] --output-prefix P [options]\n\n"
    "Tokenizes a corpus with GPT-2 BPE and writes Megatron's mmap indexed dataset,\n"
    "P_<key>_document.bin/.idx, byte-identical to Megatron's tools/preprocess_data.py.\n\n"
    "  --input FILE...          input files (read in order)\n"
    "  --input-format F         jsonl (default: one JSON object per line) or text\n"
    "  --text-documents U       with text input: one document per file (default), line or paragraph\n"
    "  --json-keys K...         JSON fields to tokenize, one output per key (default: text)\n"
    "  --output-prefix P        output prefix\n"
    "  --append-eod             append the end-of-document id (50256) to every non-empty document\n"
    "  --workers N              tokenizer threads (default 1)\n"
    "  --vocab-file F           encoder.json / gpt2-vocab.json (default: the bundled GPT-2 file)\n"
    "  --merge-file F           vocab.bpe / gpt2-merges.txt (default: the bundled GPT-2 file)\n"
    "  --tokenizer-type T       GPT2BPETokenizer (the only one)\n"
    "  --dataset-impl I         mmap (the only one)\n\n"
    "example:\n"
    "  moetrain preprocess --input corpus.jsonl --output-prefix data/my-gpt2 --append-eod --workers 2\n"
    "  # -> data/my-gpt2_text_document.bin/.idx; train with data_path: data/my-gpt2_text_document\n";

}  // namespace

int run_preprocess(const Args& args) {
  ArgParser p("preprocess",
              {"output-prefix", "input-format", "text-documents", "workers", "vocab-file", "merge-file",
               "tokenizer-type", "dataset-impl"},
              {"append-eod", "help"}, {"input", "json-keys"});
  p.parse(args);
  if (p.flag("help")) {
    std::printf("%s", kPreprocessHelp);
    return 0;
  }
  MT_CHECK(p.positional().empty(), "unexpected argument '", p.positional().empty() ? "" : p.positional()[0],
           "' (see `moetrain preprocess --help`)");
  data::PreprocessOptions opt;
  opt.inputs = p.get_list("input");
  MT_CHECK(!opt.inputs.empty(), "--input FILE is required (see `moetrain preprocess --help`)");
  opt.output_prefix = p.get("output-prefix");
  MT_CHECK(!opt.output_prefix.empty(), "--output-prefix is required (see `moetrain preprocess --help`)");
  std::string format = p.get("input-format", "jsonl"), unit = p.get("text-documents", "file");
  MT_CHECK(format == "jsonl" || format == "text", "--input-format must be jsonl or text, got '", format, "'");
  MT_CHECK(unit == "file" || unit == "line" || unit == "paragraph",
           "--text-documents must be file, line or paragraph, got '", unit, "'");
  opt.format = format == "jsonl" ? data::InputFormat::Jsonl
               : unit == "file"  ? data::InputFormat::TextFile
               : unit == "line"  ? data::InputFormat::TextLine
                                 : data::InputFormat::TextParagraph;
  opt.json_keys = p.get_list("json-keys", {"text"});
  opt.append_eod = p.flag("append-eod");
  opt.workers = int(p.get_int("workers", 1));
  MT_CHECK(p.get("tokenizer-type", "GPT2BPETokenizer") == "GPT2BPETokenizer",
           "--tokenizer-type: only GPT2BPETokenizer is supported, got '", p.get("tokenizer-type"), "'");
  MT_CHECK(p.get("dataset-impl", "mmap") == "mmap", "--dataset-impl: only mmap is supported, got '",
           p.get("dataset-impl"), "'");
  // the bundled GPT-2 files unless both are given (a lone binary without its assets then works)
  data::Gpt2Tokenizer tok(p.has("vocab-file") ? p.get("vocab-file") : data::Gpt2Tokenizer::default_vocab_file(),
                          p.has("merge-file") ? p.get("merge-file") : data::Gpt2Tokenizer::default_merge_file());
  std::vector<std::string> outputs = data::preprocess(tok, opt, [](const data::PreprocessProgress& s) {
    std::fprintf(stderr, "preprocess: %lld documents, %.1f MB, %.2fM tokens, %.1f MB/s%s\n", (long long)s.documents,
                 double(s.bytes) / 1e6, double(s.tokens) / 1e6, double(s.bytes) / 1e6 / std::max(s.seconds, 1e-9),
                 s.done ? " - done" : "");
  });
  for (const std::string& prefix : outputs) std::printf("wrote %s.bin and %s.idx\n", prefix.c_str(), prefix.c_str());
  return 0;
}

}  // namespace mt::cli
