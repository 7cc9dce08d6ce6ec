#include "data/preprocess.h"

#include <omp.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "data/indexed_dataset.h"
#include "runtime/error.h"

namespace mt::data {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// One raw document as read: its text (a JSON line, or plain text) and where it came from.
struct RawDocument {
  std::string content;
  const std::string* file;
  int64_t line;  // 1-based; 0 for a whole-file document
};

// Reads documents in order across all input files, a batch at a time.
class DocumentReader {
 public:
  explicit DocumentReader(const PreprocessOptions& opt) : opt_(opt) {}

  // Up to n more documents; empty when the inputs are exhausted.
  std::vector<RawDocument> next(int64_t n) {
    std::vector<RawDocument> batch;
    while (int64_t(batch.size()) < n) {
      if (!stream_ && !open_next()) break;
      if (opt_.format == InputFormat::TextFile) {
        std::stringstream ss;
        ss << stream_->rdbuf();
        batch.push_back({ss.str(), &opt_.inputs[file_index_ - 1], 0});
        stream_.reset();
        continue;
      }
      std::string line;
      if (opt_.format == InputFormat::TextParagraph) {
        std::string paragraph;
        int64_t first_line = 0;
        while (std::getline(*stream_, line)) {
          ++line_;
          if (line.empty()) {
            if (paragraph.empty()) continue;
            break;
          }
          if (paragraph.empty()) first_line = line_;
          paragraph += line + "\n";
        }
        if (paragraph.empty()) {
          stream_.reset();
          continue;
        }
        batch.push_back({std::move(paragraph), &opt_.inputs[file_index_ - 1], first_line});
        continue;
      }
      if (!std::getline(*stream_, line)) {
        stream_.reset();
        continue;
      }
      ++line_;
      if (opt_.format == InputFormat::Jsonl && line.find_first_not_of(" \t\r") == std::string::npos) continue;
      batch.push_back({std::move(line), &opt_.inputs[file_index_ - 1], line_});
    }
    return batch;
  }

 private:
  bool open_next() {
    if (file_index_ >= opt_.inputs.size()) return false;
    const std::string& path = opt_.inputs[file_index_++];
    stream_ = std::make_unique<std::ifstream>(path, std::ios::binary);
    MT_CHECK(*stream_, "cannot read input '", path, "'");
    line_ = 0;
    return true;
  }

  const PreprocessOptions& opt_;
  size_t file_index_ = 0;
  std::unique_ptr<std::ifstream> stream_;
  int64_t line_ = 0;
};

// The texts of one document, one per output key.
std::vector<std::string> document_texts(const RawDocument& doc, const PreprocessOptions& opt) {
  if (opt.format != InputFormat::Jsonl) return {doc.content};
  nlohmann::json obj;
  try {
    obj = nlohmann::json::parse(doc.content);
  } catch (const nlohmann::json::exception& e) {
    throw Error("'" + *doc.file + "' line " + std::to_string(doc.line) + " is not JSON: " + e.what());
  }
  std::vector<std::string> texts;
  for (const std::string& key : opt.json_keys) {
    MT_CHECK(obj.is_object() && obj.contains(key) && obj[key].is_string(), "'", *doc.file, "' line ", doc.line,
             " has no string field \"", key, "\" (choose the fields with --json-keys)");
    texts.push_back(obj[key].get<std::string>());
  }
  return texts;
}

// "input 'a.jsonl'" or "inputs 'a.jsonl', 'b.jsonl' (and 5 more)", for messages about all inputs.
std::string describe_inputs(const std::vector<std::string>& inputs) {
  std::string s = inputs.size() == 1 ? "input " : "inputs ";
  for (size_t i = 0; i < inputs.size() && i < 3; ++i) s += (i ? ", '" : "'") + inputs[i] + "'";
  if (inputs.size() > 3) s += " (and " + std::to_string(inputs.size() - 3) + " more)";
  return s;
}

}  // namespace

std::vector<std::string> preprocess(const Gpt2Tokenizer& tokenizer, const PreprocessOptions& opt,
                                    const std::function<void(const PreprocessProgress&)>& progress) {
  MT_CHECK(!opt.inputs.empty(), "preprocess: no input files");
  MT_CHECK(!opt.output_prefix.empty(), "preprocess: no output prefix");
  MT_CHECK(opt.workers >= 1, "preprocess: workers must be at least 1, got ", opt.workers);
  std::vector<std::string> keys = opt.format == InputFormat::Jsonl ? opt.json_keys : std::vector<std::string>{"text"};
  MT_CHECK(!keys.empty(), "preprocess: no JSON keys");
  for (const std::string& input : opt.inputs)
    MT_CHECK(!std::filesystem::is_directory(input), "input '", input,
             "' is a folder: give the files in it (e.g. --input ", input,
             opt.format == InputFormat::Jsonl ? "/*.jsonl)" : "/*.txt)");
  TokenDType dtype = token_dtype_for_vocab(tokenizer.vocab_size());
  // the output's folder is made as needed (--output-prefix data/new/corpus)
  std::filesystem::path out_dir = std::filesystem::path(opt.output_prefix).parent_path();
  if (!out_dir.empty()) std::filesystem::create_directories(out_dir);
  std::vector<std::string> prefixes;
  std::vector<std::unique_ptr<IndexedDatasetWriter>> writers;
  for (const std::string& key : keys) {
    prefixes.push_back(opt.output_prefix + "_" + key + "_document");
    writers.push_back(std::make_unique<IndexedDatasetWriter>(prefixes.back(), dtype));
  }

  DocumentReader reader(opt);
  PreprocessProgress stats;
  double start = now_seconds(), last_report = start;
  for (;;) {
    std::vector<RawDocument> batch = reader.next(opt.batch_documents);
    if (batch.empty()) break;
    // tokens[d][k]: document d's ids for key k. Errors are caught per document inside the
    // parallel loop and the first one (in input order) is rethrown after it.
    std::vector<std::vector<std::vector<int32_t>>> tokens(batch.size());
    std::vector<std::optional<std::string>> errors(batch.size());
#pragma omp parallel for num_threads(opt.workers) schedule(dynamic, 16)
    for (int64_t d = 0; d < int64_t(batch.size()); ++d) {
      try {
        for (const std::string& text : document_texts(batch[size_t(d)], opt)) {
          std::vector<int32_t> ids = tokenizer.encode(text);
          if (opt.append_eod && !ids.empty()) ids.push_back(tokenizer.eod());
          tokens[size_t(d)].push_back(std::move(ids));
        }
      } catch (const std::exception& e) {
        errors[size_t(d)] = e.what();
      }
    }
    for (size_t d = 0; d < batch.size(); ++d) {
      if (errors[d]) throw Error(*errors[d]);
      for (size_t k = 0; k < keys.size(); ++k) {
        const std::vector<int32_t>& ids = tokens[d][k];
        if (!ids.empty()) writers[k]->add_sequence(ids);  // empty documents: a boundary only
        writers[k]->end_document();
        stats.tokens += int64_t(ids.size());
      }
      stats.bytes += int64_t(batch[d].content.size());
    }
    stats.documents += int64_t(batch.size());
    double now = now_seconds();
    if (progress && now - last_report >= 2.0) {
      stats.seconds = now - start;
      progress(stats);
      last_report = now;
    }
  }
  // An empty dataset only fails later, in training: refuse it here (the writers remove their files).
  MT_CHECK(stats.documents > 0, "the ", describe_inputs(opt.inputs), opt.inputs.size() == 1 ? " holds" : " hold",
           " no documents",
           opt.format == InputFormat::Jsonl ? " (expected one JSON object per line, e.g. {\"text\": \"...\"})" : "",
           ": nothing to write");
  MT_CHECK(stats.tokens > 0,
           stats.documents == 1 ? "the one document" : "the " + std::to_string(stats.documents) + " documents",
           " in the ", describe_inputs(opt.inputs), stats.documents == 1 ? " is empty" : " are all empty",
           ": nothing to write");
  for (auto& w : writers) w->finalize();
  stats.seconds = now_seconds() - start;
  stats.done = true;
  if (progress) progress(stats);
  return prefixes;
}

}  // namespace mt::data
