// The op table: every differentiable op with a few shapes (typical and edge: T=1, batch 1,
// sizes that are not multiples of 8). test_ops.cpp runs each row in f32 and f64 against its
// plain-loop reference and through gradcheck in f64. A new op, or a new backend, joins by adding
// a row (or a device loop) here, not a new test.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "autograd/variable.h"

namespace testops {

struct OpCase {
  std::string op;
  std::string shape;  // human-readable, e.g. "B=2 T=5 C=12 H=3"
  // The inputs in dtype dt; differentiable ones require a gradient, index tensors do not.
  std::function<std::vector<mt::Variable>(mt::DType dt)> inputs;
  std::function<mt::Variable(const std::vector<mt::Variable>&)> forward;
  // A naive f64 reference of the forward, from the inputs' values.
  std::function<std::vector<double>(const std::vector<mt::Tensor>&)> reference;
};

const std::vector<OpCase>& op_cases();
// The MoE ops under fixed routings (op_cases_moe.cpp).
void add_moe_cases(std::vector<OpCase>& cases);

}  // namespace testops
