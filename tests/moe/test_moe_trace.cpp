// `moetrain trace`'s recorder and layout on the worked top-1 example (docs/math/moe.md §10),
// where every number can be computed by hand: P rows (0.9,0.1) ... (0.2,0.8), capacity 3, token 3
// dropped, l_aux = 1.0556, dl_aux/dP = (0.2222, 0.1111); experts whose fc1 is 0 output their fc2
// bias (1, 2), so with dL/dy = 1 every kept token's d combine weight is <1, (1,2)> = 3. The test
// compares the whole trace with the copy printed in docs/math/moe.md, so the page cannot drift.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "moe/moe_layer.h"
#include "moe/moe_trace.h"

using namespace mt;
using namespace mt::moe;

namespace {

std::string trace_of_worked_example() {
  MoeLayerConfig cfg;
  cfg.hidden = 2;
  cfg.ffn = 2;
  cfg.router.num_experts = 2;
  cfg.router.topk = 1;
  cfg.router.min_capacity = 1;
  cfg.router.use_rts = false;
  cfg.dtype = DType::F64;
  ParameterRegistry params;
  MoeLayer layer(params, "moe.", cfg);
  for (const Parameter& p : params.all()) {  // gate = identity, fc1 = 0, fc2 bias = (1, 2)
    Tensor v = p.var.value();
    v.zero_();
    if (p.name == "moe.gate.weight") v.data<double>()[0] = v.data<double>()[3] = 1.0;
    if (p.name.find("dense_4h_to_h.bias") != std::string::npos) v.data<double>()[0] = 1, v.data<double>()[1] = 2;
  }
  // x = log P: the gate's logits, whose softmax is P itself
  std::vector<double> probs = {0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.4, 0.3, 0.7, 0.2, 0.8}, logp;
  for (double p : probs) logp.push_back(std::log(p));
  Variable x(Tensor::from_vector(logp, {6, 2}), true);
  MoeTraceRecorder rec(0);
  MoeOutput out;
  {
    MoeProbeScope scope(&rec);
    out = layer.forward(x, true, {});
  }
  // L = sum(y) + l_aux: dL/dy = 1, dL/dl_aux = 1 (sum(y) as the product with a row of ones)
  Variable ones(Tensor::full({1, 12}, 1.0, DType::F64));
  Variable sum_y = ag::reshape(ag::linear(ag::reshape(out.y, {1, 12}), ones), out.aux_loss.shape());
  current_tape().backward(ag::add(sum_y, out.aux_loss));
  std::vector<std::pair<std::string, Tensor>> grads = {{"moe.gate.weight", params.get("moe.gate.weight").var.grad()}};
  return format_moe_trace(
      rec, "MoE layer (the worked example: S = 6, E = 2, top-1, cf 1, min capacity 1, RTS off)", 6, grads);
}

// The fenced block between <!-- trace-example --> and <!-- /trace-example --> in docs/math/moe.md.
std::string documented_trace() {
  std::ifstream in(MOETRAIN_SOURCE_DIR "/docs/math/moe.md");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string doc = ss.str();
  size_t begin = doc.find("<!-- trace-example -->"), end = doc.find("<!-- /trace-example -->");
  REQUIRE(begin != std::string::npos);
  REQUIRE(end != std::string::npos);
  std::string block = doc.substr(begin, end - begin);
  size_t open = block.find("```text\n"), close = block.rfind("```");
  REQUIRE(open != std::string::npos);
  return block.substr(open + 8, close - open - 8);
}

}  // namespace

TEST_CASE("trace of the worked example: the hand-computed numbers", "[moe][trace]") {
  std::string t = trace_of_worked_example();
  INFO(t);
  CHECK(t.find("capacity 3 per expert; 5 of 6 assignments kept") != std::string::npos);
  CHECK(t.find("e0 4->3 e1 2->2") != std::string::npos);
  CHECK(t.find("l_aux = 1.0556") != std::string::npos);
  CHECK(t.find("expert 0 (P 0.6000): dropped (over capacity 3)") != std::string::npos);
  CHECK(t.find("expert 1 (P 0.8000): slot 1, row 4 of the dispatched buffer, combine weight 0.8000") !=
        std::string::npos);
  CHECK(t.find("d probs via l_aux        [0.2222, 0.1111]") != std::string::npos);
  CHECK(t.find("d probabilities          [3.2222, 0.1111]") != std::string::npos);   // token 0: 3 + 0.2222
  CHECK(t.find("d gate logits            [0.2800, -0.2800]") != std::string::npos);  // 0.9 (3.2222 - 2.9111)
  CHECK(t.find("d gate logits            [0.0267, -0.0267]") != std::string::npos);  // token 3, dropped
}

// After changing the layout: MOETRAIN_PRINT_TRACE=1 moetrain_tests "docs/math/moe.md*" prints the
// new trace to paste into the page.
TEST_CASE("docs/math/moe.md shows this very trace", "[moe][trace][docs]") {
  if (std::getenv("MOETRAIN_PRINT_TRACE")) std::printf("%s", trace_of_worked_example().c_str());
  REQUIRE(documented_trace() == trace_of_worked_example());
}
