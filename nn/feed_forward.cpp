#include "nn/feed_forward.h"

#include "autograd/ops.h"
#include "runtime/random.h"

namespace mt::nn {

DenseMlp::DenseMlp(ParameterRegistry& params, const std::string& prefix, int64_t hidden, int64_t ffn, double std,
                   double out_std, RngKey init_key, DType dtype) {
  RngKey k1 = init_key, k2 = init_key;
  k2.stream ^= 0x9E3779B97F4A7C15ull;
  fc1_w_ = params.add(prefix + "dense_h_to_4h.weight", randn({ffn, hidden}, dtype, k1, 0.0, std),
                      ParamTags{}.set_tp_split(0));
  fc1_b_ = params.add(prefix + "dense_h_to_4h.bias", Tensor::zeros({ffn}, dtype), ParamTags::no_decay().set_tp_split(0));
  fc2_w_ = params.add(prefix + "dense_4h_to_h.weight", randn({hidden, ffn}, dtype, k2, 0.0, out_std),
                      ParamTags{}.set_tp_split(1));
  fc2_b_ = params.add(prefix + "dense_4h_to_h.bias", Tensor::zeros({hidden}, dtype), ParamTags::no_decay());
}

FeedForwardOutput DenseMlp::forward(const Variable& x, bool, RngKey) const {
  FeedForwardOutput out;
  out.y = ag::linear(ag::gelu(ag::linear(x, fc1_w_, fc1_b_)), fc2_w_, fc2_b_);
  return out;
}

}  // namespace mt::nn
