#include "eval/scoring.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>

#include "autograd/tape.h"
#include "runtime/ops.h"

namespace mt::eval {
namespace {

// A request as the model sees it: the input window and the tokens its last positions predict.
struct Prepared {
  std::vector<int32_t> input;    // at most max_length tokens
  std::vector<int32_t> targets;  // predicted at input positions [input.size() - targets.size(), input.size())
};

Prepared prepare(const ScoreRequest& r, int64_t max_length, size_t index) {
  MT_CHECK(!r.continuation.empty(), "scoring request ", index, ": the continuation is empty");
  MT_CHECK(!r.context.empty(), "scoring request ", index,
           ": the context is empty (give the end-of-document token as the context, as lm-eval does)");
  std::vector<int32_t> full = r.context;
  full.insert(full.end(), r.continuation.begin(), r.continuation.end());
  size_t keep = std::min(full.size(), size_t(max_length) + 1);  // left-truncate to max_length + 1
  full.erase(full.begin(), full.end() - std::ptrdiff_t(keep));
  Prepared p;
  p.input.assign(full.begin(), full.end() - 1);
  size_t k = std::min(r.continuation.size(), p.input.size());
  p.targets.assign(full.end() - std::ptrdiff_t(k), full.end());
  return p;
}

bool is_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  return a.size() <= b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// (sum of log-probabilities of targets, every target the argmax) over rows [first, first + n)
// of host logits [R, V]; logprob[r] = target logit - lse of row r (from the fused cross-entropy
// kernel, converted once per batch).
ScoreResult score_rows(const Tensor& logits, const std::vector<double>& logprob, const std::vector<int32_t>& targets,
                       int64_t first) {
  ScoreResult r;
  r.greedy = true;
  int64_t v = logits.size(1);
  for (size_t i = 0; i < targets.size(); ++i) {
    int64_t row = first + int64_t(i);
    r.logprob += logprob[size_t(row)];
    std::vector<double> values = logits.narrow(row, 1).to_double_vector();
    int64_t best = std::max_element(values.begin(), values.end()) - values.begin();  // the first maximum
    if (best != int64_t(targets[i]) || best >= v) r.greedy = false;
  }
  return r;
}

}  // namespace

GptLogitSource::GptLogitSource(const nn::GptModel& model, int64_t vocab_size) : model_(model), vocab_(vocab_size) {
  MT_CHECK(vocab_size > 0 && vocab_size <= model.config().padded_vocab_size, "scoring: vocabulary ", vocab_size,
           " does not fit the model's ", model.config().padded_vocab_size);
  MT_CHECK(!model.config().tensor_group || model.config().tensor_group->size() == 1,
           "scoring runs in one process only (load the checkpoint without tensor parallelism)");
}

Tensor GptLogitSource::logits_at(const Tensor& tokens, const std::vector<int64_t>& rows) {
  NoGradGuard no_grad;
  Tensor hidden = model_.final_hidden(tokens, {false, 0}).value();
  Tensor flat = hidden.reshape({-1, hidden.size(-1)});
  Tensor picked = Tensor::empty({int64_t(rows.size()), flat.size(1)}, flat.dtype(), flat.device());
  for (size_t i = 0; i < rows.size(); ++i) picked.narrow(int64_t(i), 1).copy_from(flat.narrow(rows[i], 1));
  // [R, h] x [vocab, h]^T: only the real vocabulary's rows of the tied projection
  return ops::matmul(picked, false, model_.output_weight().value().narrow(0, vocab_), true);
}

std::vector<ScoreResult> score(LogitSource& source, const std::vector<ScoreRequest>& requests,
                               const ScoreOptions& options, ScoreStats* stats) {
  int64_t max_length = options.max_length > 0 ? std::min(options.max_length, source.max_length()) : source.max_length();
  std::vector<Prepared> prepared;
  prepared.reserve(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) prepared.push_back(prepare(requests[i], max_length, i));

  // Carriers: in lexicographic order of inputs, a request whose input is a prefix of the next one
  // rides on that one's carrier (all inputs extending it follow it directly).
  std::vector<size_t> order(prepared.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return prepared[a].input < prepared[b].input; });
  std::vector<size_t> carrier(prepared.size());
  for (size_t k = order.size(); k-- > 0;) {
    size_t i = order[k];
    bool rides = k + 1 < order.size() && is_prefix(prepared[i].input, prepared[order[k + 1]].input);
    carrier[i] = rides ? carrier[order[k + 1]] : i;
  }
  std::vector<std::vector<size_t>> riders(prepared.size());
  std::vector<size_t> forwards;
  for (size_t i = 0; i < prepared.size(); ++i) {
    riders[carrier[i]].push_back(i);
    if (carrier[i] == i) forwards.push_back(i);
  }
  // Longest first (lm-eval's order), then batches of at most batch_tokens padded tokens.
  std::stable_sort(forwards.begin(), forwards.end(),
                   [&](size_t a, size_t b) { return prepared[a].input.size() > prepared[b].input.size(); });
  std::vector<std::vector<size_t>> batches;
  for (size_t f : forwards) {
    if (!batches.empty()) {
      std::vector<size_t>& last = batches.back();
      int64_t len = int64_t(prepared[last.front()].input.size());
      if (int64_t(last.size() + 1) * len <= options.batch_tokens) {
        last.push_back(f);
        continue;
      }
    }
    batches.push_back({f});
  }

  int rank = options.ranks ? options.ranks->rank() : 0, size = options.ranks ? options.ranks->size() : 1;
  std::vector<double> out(2 * prepared.size(), 0.0);  // (logprob, greedy) per request; this rank's only
  ScoreStats st;
  st.requests = int64_t(prepared.size());
  st.forwards = int64_t(forwards.size());
  st.batches = int64_t(batches.size());
  for (const Prepared& p : prepared) st.request_tokens += int64_t(p.input.size());
  auto start = std::chrono::steady_clock::now();
  for (size_t bi = size_t(rank); bi < batches.size(); bi += size_t(size)) {
    const std::vector<size_t>& batch = batches[bi];
    int64_t t_len = int64_t(prepared[batch.front()].input.size()), b_len = int64_t(batch.size());
    Tensor tokens = Tensor::full({b_len, t_len}, double(options.pad_id), DType::I32);
    std::vector<int64_t> rows;
    std::vector<int32_t> targets;
    std::vector<std::pair<size_t, int64_t>> scored;  // (request, its first row in `rows`)
    for (int64_t b = 0; b < b_len; ++b) {
      const std::vector<int32_t>& input = prepared[batch[size_t(b)]].input;
      std::copy(input.begin(), input.end(), tokens.data<int32_t>() + b * t_len);
      for (size_t r : riders[batch[size_t(b)]]) {
        const Prepared& p = prepared[r];
        scored.push_back({r, int64_t(rows.size())});
        int64_t first = int64_t(p.input.size() - p.targets.size());
        for (size_t i = 0; i < p.targets.size(); ++i) {
          rows.push_back(b * t_len + first + int64_t(i));
          targets.push_back(p.targets[i]);
        }
      }
    }
    st.fed_tokens += b_len * t_len;
    Tensor logits = source.logits_at(tokens, rows);
    MT_CHECK(logits.dim() == 2 && logits.size(0) == int64_t(rows.size()) && logits.size(1) == source.vocab_size(),
             "scoring: the model gave logits ", logits.str(), " for ", rows.size(), " rows");
    for (int32_t t : targets)
      MT_CHECK(t >= 0 && t < source.vocab_size(), "scoring: token ", t, " is outside the vocabulary of ",
               source.vocab_size());
    Tensor target_ids = Tensor::from_vector(targets, {int64_t(targets.size())}).to(logits.device());
    Tensor lse = Tensor::empty({int64_t(rows.size())}, logits.dtype(), logits.device()),
           target_logits = Tensor::empty({int64_t(rows.size())}, logits.dtype(), logits.device());
    ops::cross_entropy_forward(logits, target_ids, lse, target_logits);
    std::vector<double> logprob = target_logits.to_double_vector(), l = lse.to_double_vector();
    for (size_t i = 0; i < logprob.size(); ++i) logprob[i] -= l[i];
    Tensor host_logits = logits.device().is_cpu() ? logits : logits.to(Device::cpu());
    for (auto [r, first] : scored) {
      ScoreResult s = score_rows(host_logits, logprob, prepared[r].targets, first);
      out[2 * r] = s.logprob;
      out[2 * r + 1] = s.greedy ? 1.0 : 0.0;
    }
    if (options.progress && rank == 0) {
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::fprintf(stderr, "\r  scored %zu/%zu batches (%.0f s)", bi + 1, batches.size(), secs);
    }
  }
  if (options.progress && rank == 0) std::fprintf(stderr, "\n");
  if (size > 1) {  // each request was scored on exactly one rank; the others hold zeros
    Tensor all = Tensor::from_vector(out, {int64_t(out.size())});
    options.ranks->all_reduce(all, parallel::ReduceKind::Sum);
    out = all.to_double_vector();
  }
  std::vector<ScoreResult> results(prepared.size());
  for (size_t i = 0; i < results.size(); ++i) results[i] = {out[2 * i], out[2 * i + 1] > 0.5};
  if (stats) *stats = st;
  return results;
}

}  // namespace mt::eval
