// Corpus -> Megatron indexed dataset, as Megatron's tools/preprocess_data.py does for GPT:
// each document is tokenized whole (no sentence splitting), written as one sequence, optionally
// followed by the EOD id (--append-eod; the stored size includes it), documents in input order.
// Output per JSON key K: <output_prefix>_<K>_document.{bin,idx} (text inputs use K = "text").
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "data/gpt2_tokenizer.h"

namespace mt::data {

// Loose JSON lines; plain text with one document per file, per line, or per paragraph (blocks of
// lines separated by empty lines; a paragraph keeps its newlines, the empty lines are dropped).
enum class InputFormat { Jsonl, TextFile, TextLine, TextParagraph };

struct PreprocessOptions {
  std::vector<std::string> inputs;
  InputFormat format = InputFormat::Jsonl;
  std::vector<std::string> json_keys = {"text"};
  std::string output_prefix;
  bool append_eod = false;
  int workers = 1;
  int64_t batch_documents = 2048;  // documents read, tokenized in parallel, then written, per round
};

struct PreprocessProgress {
  int64_t documents = 0, tokens = 0, bytes = 0;
  double seconds = 0;
  bool done = false;
};

// Runs the whole job; `progress` (optional) is called about every 2 seconds and once at the end.
// Output files appear only when complete (IndexedDatasetWriter); returns the output prefixes.
std::vector<std::string> preprocess(const Gpt2Tokenizer& tokenizer, const PreprocessOptions& options,
                                    const std::function<void(const PreprocessProgress&)>& progress = {});

}  // namespace mt::data
