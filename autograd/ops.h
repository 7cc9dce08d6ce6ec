// Differentiable ops: each runs its forward kernel (runtime/ops.h) and records a hand-written
// backward on the tape. One file per op in autograd/ops/, forward and backward side by side.
// Shapes: B batch, T sequence, C channels, H heads, N rows (all leading dims flattened), V vocab.
#pragma once

#include <functional>

#include "autograd/tape.h"
#include "autograd/variable.h"
#include "runtime/backend.h"
#include "runtime/rng.h"

namespace mt::ag {

// y [..., out] = x [..., in] @ w[out, in]^T + b[out]; b may be undefined (no bias).
Variable linear(const Variable& x, const Variable& w, const Variable& b = {});
// y [..., C] = x + b, b [C] added to every row (the bias of a row-parallel linear, after its sum).
Variable add_bias(const Variable& x, const Variable& b);

// out [B,T,C] = wte[idx] + wpe[0:T]; idx [B,T] i32/i64 (no gradient).
// Either table may be undefined; with a vocabulary shard wte holds rows [start, start + V) and
// other ids get no word row (vocab-parallel embedding).
Variable embedding(const Tensor& idx, const Variable& wte, const Variable& wpe, const VocabShard& shard = {});

// LayerNorm over the last dimension: x [..., C], w [C], b [C].
Variable layernorm(const Variable& x, const Variable& w, const Variable& b, double eps = 1e-5);

// GELU, tanh approximation (Megatron). Any shape.
Variable gelu(const Variable& x);

// Softmax over the last dimension.
Variable softmax(const Variable& x);

// Fused causal self-attention: qkv [B,T,3C] -> [B,T,C] with n_head heads; attention dropout on the
// probabilities with probability dropout_p, its mask a function of `key` (see runtime/ops.h).
Variable causal_self_attention(const Variable& qkv, int64_t n_head, const AttentionDropout& dropout = {});

// A view of x with another shape (one entry may be -1); the gradient flows back reshaped.
Variable reshape(const Variable& x, const Shape& shape);

// The identity, for inspection tools: the backward shows the incoming gradient dy to `on_grad`
// before passing it on (dx += dy). The value is a view of x.
Variable observe(const Variable& x, std::function<void(const Tensor& dy)> on_grad);

// a + b (same shape): the residual connection.
Variable add(const Variable& a, const Variable& b);
// alpha * x.
Variable scale(const Variable& x, double alpha);
// x * factor elementwise, factor a constant tensor of x's shape (noise, masks): dx += factor * dy.
Variable multiply(const Variable& x, const Tensor& factor);

// Inverted dropout with drop probability p; the mask is a function of (key, element index).
// Identity (no copy, no tape entry) when p == 0.
Variable dropout(const Variable& x, double p, RngKey key);

// Mean softmax cross-entropy: logits [..., V], targets [...] (i32/i64). With a loss mask (same
// element count as targets, float), loss = sum(mask * ce) / sum(mask) as Megatron; a mask that
// sums to 0 gives loss 0. Returns a 0-d tensor.
Variable cross_entropy(const Variable& logits, const Tensor& targets, const Tensor& loss_mask = {});
// The same over logits that hold a vocabulary shard: `complete(lse, target_logits)` turns the
// shard's per-row values into the whole vocabulary's before the loss is formed (tensor
// parallelism all-reduces them, parallel/tensor_parallel.h); the backward needs nothing more.
// expected_dout (non-zero, the whole vocabulary): the gradient the backward is expected to bring
// (the trainer's loss seed); the logits' gradient for it is then computed with the forward, in one
// pass over the logits (ops::cross_entropy_fused), and used when the backward brings exactly that
// (the same bits), recomputed otherwise. overwrite_logits (the caller reads the logits no more):
// a gradient of the logits' own dtype is written over them, saving a [N,V] buffer and the pass
// that fetches its memory; a backward bringing another gradient then scales that one (and where
// that gradient was made rounded for its reader, f32 holding bf16/f16 values where the reader's
// GEMMs widen them, the scaled or added gradient is the rounded one, rounded again by the reader:
// within the rounding, not the bits of a recompute; the trainer's seed is the expected one and
// its logits have no other reader, so it never takes these paths).
Variable cross_entropy(const Variable& logits, const Tensor& targets, const Tensor& loss_mask, const VocabShard& shard,
                       const std::function<void(Tensor& lse, Tensor& target_logits)>& complete,
                       double expected_dout = 0, bool overwrite_logits = false);

// The masked mean of the losses: weights m_n / sum(m) over n rows (1/n without a mask), and
// sum_n w_n loss_n over the rows of non-zero weight (a masked row's infinite loss cannot make NaN).
Tensor mean_weights(const Tensor& loss_mask, int64_t n, DType dtype, Device device);
double weighted_sum(const Tensor& losses, const Tensor& weights);

}  // namespace mt::ag
