// Helpers shared by the data tests: the bundled Megatron sample, whole-file reads and writes,
// fresh temporary folders, the GPT-2 tokenizer, and capturing what the code writes to stderr.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "data/gpt2_tokenizer.h"
#include "test_folders.h"

namespace datatest {

namespace fs = std::filesystem;

inline const std::string kSampleDir = MOETRAIN_SOURCE_DIR "/tests/data/megatron_sample";
inline const std::string kSample = kSampleDir + "/my-gpt2_text_document";  // 10000 sequences, 60000 tokens

// The whole file ("" when it cannot be read).
inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
// Writes (replaces) the whole file.
inline void spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// An empty folder under the temporary directory, named for the test, removed when the process
// exits (tests/test_folders.h).
inline fs::path fresh_dir(const std::string& name) {
  return testfolders::fresh_temp_dir("moetrain_test_" + name);
}

// The bundled GPT-2 tokenizer, loaded once.
inline const mt::data::Gpt2Tokenizer& gpt2() {
  static mt::data::Gpt2Tokenizer tok(mt::data::Gpt2Tokenizer::default_vocab_file(),
                                     mt::data::Gpt2Tokenizer::default_merge_file());
  return tok;
}

// Redirects file descriptor 2 into a temporary file from construction until text() is called.
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    file_ = std::tmpfile();
    saved_ = ::dup(2);
    ::dup2(::fileno(file_), 2);
  }
  ~StderrCapture() {
    restore();
    if (file_) std::fclose(file_);
  }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;
  // Everything written to stderr so far; stderr is restored.
  std::string text() {
    restore();
    std::string out;
    if (!file_) return out;
    std::rewind(file_);
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, file_)) > 0;) out.append(buf, n);
    return out;
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
  }
  std::FILE* file_ = nullptr;
  int saved_ = -1;
};

}  // namespace datatest
