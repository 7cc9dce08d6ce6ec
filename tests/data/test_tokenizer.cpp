// GPT-2 BPE: the shared test vectors (pre-tokens and ids), Tiny Shakespeare's token count,
// Megatron's handling of a literal <|endoftext|>, invalid UTF-8, padded vocab sizes, errors.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/gpt2_tokenizer.h"
#include "data/pretokenize.h"
#include "data_test_util.h"

using namespace mt;
using data::Gpt2Tokenizer;

namespace {
using datatest::gpt2;
using datatest::slurp;
// The file `name` in this process's temporary folder, holding `content`.
std::string write_temp(const std::string& name, const std::string& content) {
  static const std::filesystem::path dir = datatest::fresh_dir("tokenizer");
  std::string path = (dir / name).string();
  datatest::spit(path, content);
  return path;
}
}  // namespace

TEST_CASE("GPT-2 tokenizer matches the shared test vectors", "[data][tokenizer]") {
  auto vectors = nlohmann::json::parse(slurp(MOETRAIN_SOURCE_DIR "/tests/data/tokenizer_testvectors.json"));
  REQUIRE(gpt2().eod() == vectors["eod_id"].get<int>());
  for (auto& c : vectors["cases"]) {
    std::string text = c["text"];
    DYNAMIC_SECTION("text: " << text) {
      std::vector<std::string> pieces;
      for (std::string_view p : data::gpt2_pretokenize(text)) pieces.emplace_back(p);
      REQUIRE(pieces == c["pretokens"].get<std::vector<std::string>>());
      std::vector<int32_t> ids = gpt2().encode(text);
      REQUIRE(ids == c["ids"].get<std::vector<int32_t>>());
      REQUIRE(gpt2().decode(ids) == text);
    }
  }
}

TEST_CASE("Tiny Shakespeare is 338025 GPT-2 tokens", "[data][tokenizer]") {
  std::string text = slurp(MOETRAIN_SOURCE_DIR "/assets/tinyshakespeare/input.txt");
  std::vector<int32_t> ids = gpt2().encode(text);
  REQUIRE(ids.size() == 338025);
  REQUIRE(std::vector<int32_t>(ids.begin(), ids.begin() + 6) == std::vector<int32_t>{5962, 22307, 25, 198, 8421, 356});
  REQUIRE(gpt2().decode_bytes(ids) == text);
}

TEST_CASE("a literal <|endoftext|> is ordinary text, as in Megatron", "[data][tokenizer]") {
  REQUIRE(gpt2().encode("<|endoftext|>") == std::vector<int32_t>{27, 91, 437, 1659, 5239, 91, 29});
  REQUIRE(gpt2().eod() == 50256);
  REQUIRE(gpt2().vocab_size() == 50257);
}

TEST_CASE("invalid UTF-8 is encoded byte by byte and round-trips", "[data][tokenizer]") {
  std::string bad = std::string("ok \xff\xfe caf\xc3 \xe4\xbd") + "\x80 end\xc3\xa9";
  std::vector<int32_t> ids = gpt2().encode(bad);
  REQUIRE_FALSE(ids.empty());
  REQUIRE(gpt2().decode_bytes(ids) == bad);
  REQUIRE(gpt2().decode(ids).find("\xef\xbf\xbd") != std::string::npos);  // U+FFFD for display
  // Every single byte value, alone and in a run.
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(char(b));
  REQUIRE(gpt2().decode_bytes(gpt2().encode(all)) == all);
  REQUIRE(gpt2().encode("").empty());
}

TEST_CASE("padded vocabulary sizes follow Megatron", "[data][tokenizer]") {
  REQUIRE(gpt2().padded_vocab_size(128, 1) == 50304);
  REQUIRE(gpt2().padded_vocab_size(128, 2) == 50432);
  REQUIRE(gpt2().padded_vocab_size(128, 4) == 50688);
  REQUIRE(gpt2().padded_vocab_size(128, 8) == 51200);
  REQUIRE_THROWS_WITH(gpt2().padded_vocab_size(0, 1), Catch::Contains("make_vocab_size_divisible_by"));
}

TEST_CASE("tokenizer file errors name the file and the entry", "[data][tokenizer][errors]") {
  std::string vocab = Gpt2Tokenizer::default_vocab_file(), merges = Gpt2Tokenizer::default_merge_file();
  REQUIRE_THROWS_WITH(Gpt2Tokenizer("/nonexistent/vocab.json", merges), Catch::Contains("'/nonexistent/vocab.json'"));
  std::string not_json = write_temp("notjson.json", "{\"a\": 0,");
  REQUIRE_THROWS_WITH(Gpt2Tokenizer(not_json, merges), Catch::Contains(not_json) && Catch::Contains("not valid JSON"));
  std::string bad_merges = write_temp("bad_merges.txt", "#version: 0.2\n\xc4\xa0 t\nqq zz\n");
  REQUIRE_THROWS_WITH(Gpt2Tokenizer(vocab, bad_merges),
                      Catch::Contains("do not fit together") && Catch::Contains("line 3") && Catch::Contains("qq zz"));
  std::string bad_line = write_temp("bad_line.txt", "#version: 0.2\nabc\n");
  REQUIRE_THROWS_WITH(Gpt2Tokenizer(vocab, bad_line), Catch::Contains("line 2") && Catch::Contains("two symbols"));
}
