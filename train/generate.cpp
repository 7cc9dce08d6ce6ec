#include "train/generate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "autograd/tape.h"
#include "data/gpt2_tokenizer.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/model_config.h"

namespace mt::train {

LoadedModel load_model_for_inference(const std::string& checkpoint, bool dropless_moe,
                                     const std::function<void(const std::string& dir, TrainConfig& cfg)>& adjust) {
  std::string dir = resolve_checkpoint(checkpoint);
  MT_CHECK(!dir.empty(), "no checkpoint in '", checkpoint,
           "' (expected a checkpoint folder or a save folder with a "
           "'latest' file)");
  TrainConfig cfg = load_config_file(checkpoint_config_path(dir));
  if (dropless_moe) cfg.disable_moe_token_dropping = true;
  if (adjust) adjust(dir, cfg);
  LoadedModel out;
  out.checkpoint = dir;
  out.vocab_file = cfg.vocab_file.empty() ? data::Gpt2Tokenizer::default_vocab_file() : cfg.vocab_file;
  out.merge_file = cfg.merge_file.empty() ? data::Gpt2Tokenizer::default_merge_file() : cfg.merge_file;
  data::Gpt2Tokenizer tok(out.vocab_file, out.merge_file);
  out.model = make_model(cfg, tok.vocab_size());
  load_checkpoint(dir, out.model->parameters(), nullptr);
  out.vocab_size = tok.vocab_size();
  out.eod = tok.eod();
  out.config = cfg;
  return out;
}

void check_sampling_options(const SamplingOptions& opt) {
  MT_CHECK(opt.max_new_tokens >= 0, "--max-new-tokens must be 0 or more, got ", opt.max_new_tokens);
  MT_CHECK(opt.min_new_tokens >= 0 && opt.min_new_tokens <= opt.max_new_tokens,
           "--min-new-tokens must be between 0 and --max-new-tokens (", opt.max_new_tokens, "), got ",
           opt.min_new_tokens);
  MT_CHECK(opt.temperature >= 0, "--temperature must be 0 (greedy) or more, got ", opt.temperature);
  MT_CHECK(opt.top_k >= 0, "--top-k must be 0 (all tokens) or more, got ", opt.top_k);
  MT_CHECK(opt.top_p > 0 && opt.top_p <= 1, "--top-p must be in (0, 1], got ", opt.top_p);
}

GenerationEnd generate(const nn::GptModel& model, int64_t vocab_size, std::vector<int32_t>& tokens,
                       const SamplingOptions& opt, const std::function<void(int32_t)>& on_token) {
  MT_CHECK(!tokens.empty(), "generate: the prompt must hold at least one token");
  check_sampling_options(opt);
  NoGradGuard no_grad;
  int64_t window = model.config().max_position_embeddings, padded = model.config().padded_vocab_size;
  std::vector<double> probs;
  std::vector<int32_t> order;
  GenerationEnd end;
  for (int64_t step = 0; step < opt.max_new_tokens; ++step) {
    size_t start = tokens.size() > size_t(window) ? tokens.size() - size_t(window) : 0;
    int64_t t_len = int64_t(tokens.size() - start);
    Tensor input = Tensor::from_vector(std::vector<int32_t>(tokens.begin() + int64_t(start), tokens.end()), {1, t_len});
    std::vector<double> logits = model.logits(input).value().to_double_vector();
    const double* last = logits.data() + (t_len - 1) * padded;
    // the candidates: the real vocabulary, without the stop token before min_new_tokens
    int32_t banned = step < opt.min_new_tokens ? opt.stop_token : -1;
    order.resize(size_t(vocab_size));
    std::iota(order.begin(), order.end(), 0);
    if (banned >= 0 && banned < vocab_size) order.erase(order.begin() + banned);
    int32_t next;
    if (opt.temperature == 0) {
      next = *std::max_element(order.begin(), order.end(), [&](int32_t a, int32_t b) { return last[a] < last[b]; });
    } else {
      // softmax(logits / T) over the candidates, then top-k and top-p filtering.
      std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return last[a] > last[b]; });
      size_t keep = opt.top_k > 0 ? std::min<size_t>(size_t(opt.top_k), order.size()) : order.size();
      probs.assign(keep, 0.0);
      double mx = last[order[0]] / opt.temperature, sum = 0;
      for (size_t i = 0; i < keep; ++i) sum += (probs[i] = std::exp(last[order[i]] / opt.temperature - mx));
      double cumulative = 0;
      size_t nucleus = keep;
      for (size_t i = 0; i < keep; ++i) {
        cumulative += probs[i] / sum;
        if (cumulative >= opt.top_p) {
          nucleus = i + 1;
          break;
        }
      }
      double total = std::accumulate(probs.begin(), probs.begin() + int64_t(nucleus), 0.0);
      double u = double(uniform_at(rng_key(opt.seed, uint64_t(tokens.size()), 0, 0x6E), 0)) * total;
      size_t pick = 0;
      while (pick + 1 < nucleus && (u -= probs[pick]) > 0) ++pick;
      next = order[pick];
    }
    tokens.push_back(next);
    end.new_tokens += 1;
    if (on_token) on_token(next);
    if (next == opt.stop_token) {
      end.at_stop_token = true;
      break;
    }
  }
  return end;
}

}  // namespace mt::train
