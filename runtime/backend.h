// The kernel table. One Backend per device type implements every kernel; runtime/ops.h checks
// shapes and dtypes once, then calls backend_for(device). A CPU-only build links with just the
// CPU backend; the CUDA backend registers itself with register_backend().
//
// The kernels are listed once, in runtime/backend_kernels.inc (their tensors' shapes beside each);
// every backend declares them all by including that list in its class, and implements a section
// in files of the section's name, runtime/cpu/<name>.cpp and runtime/cuda/<name>.cu.
//
// Conventions for every kernel:
//   * tensors are contiguous, already checked by runtime/ops.cpp (shapes, dtypes, devices);
//   * float kernels run in f32 and f64 (T below), index tensors are i32 or i64;
//   * backward kernels ACCUMULATE into their gradient outputs (dx += ...), as llm.c does, so a
//     tensor used twice in the forward gets the sum of both contributions for free.
#pragma once

#include "runtime/adamw_math.h"  // AdamWArgs
#include "runtime/rng.h"
#include "runtime/tensor.h"

namespace mt {

enum class BinaryOp { Add, Sub, Mul, Div };
enum class ReduceOp { Sum, SumSquares, Max, AbsMax };

// C[i] = alpha * op(A[i]) * op(B[i]) + beta * C[i] for i < batch, op = transpose or not.
// op(A[i]) is [M,K], op(B[i]) is [K,N], C[i] is [M,N]; strides in elements (0 = broadcast).
struct GemmDesc {
  bool trans_a = false, trans_b = false;
  int64_t batch = 1, m = 0, n = 0, k = 0;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
};

// Attention dropout: probability p, the masks' stream, and where the op's heads sit among a
// sample's heads: a tensor-parallel rank holds heads [first_head, first_head + n_head) of
// total_heads (0: n_head, all of them), and each head keeps the mask it has in the whole model.
struct AttentionDropout {
  double p = 0.0;
  RngKey key;
  int64_t first_head = 0, total_heads = 0;
  // Where the mask of head h (of the op's n_head) of sample b starts in the key's stream: element
  // (b * total_heads + first_head + h) * T * T; score (t, s) of that head is element start + t*T + s.
  MT_HOST_DEVICE uint64_t mask_start(int64_t n_head, int64_t b, int64_t h, int64_t t_len) const {
    int64_t total = total_heads > 0 ? total_heads : n_head;
    return uint64_t(b * total + first_head + h) * uint64_t(t_len) * uint64_t(t_len);
  }
};

// A vocabulary shard: an embedding table or logits holding vocabulary rows [start, start + V)
// of `total` (tensor parallelism splits the vocabulary). total 0: the whole vocabulary, V. Ids
// must lie in [0, total); an id outside the shard has no row here (no embedding, no target logit).
struct VocabShard {
  int64_t start = 0, total = 0;
  // The row of vocabulary id `id` in a table (or the column in logits) holding `rows` entries
  // from start; -1 when another shard holds it.
  MT_HOST_DEVICE int64_t row(int64_t id, int64_t rows) const {
    int64_t r = id - start;
    return r >= 0 && r < rows ? r : -1;
  }
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  // Whether gemm widens half-precision operands of this dtype to f32 before it multiplies (no
  // units that take them as they are): ops::gemm_widens.
  virtual bool gemm_widens(DType operands) const {
    (void)operands;
    return false;
  }
  // dst [any] (f32) = src (f32, same numel) rounded to the 16-bit `lo` and widened back (exactly):
  // a `lo` GEMM operand's values held in f32, for a backend whose gemm widens `lo` (its GEMMs then
  // read them as they are, no widening pass). dst may be src itself. The default rounds into a
  // `lo` copy and widens that back; a backend may do it in one pass.
  virtual void round_through(const Tensor& src, DType lo, Tensor& dst);

#define MT_KERNEL(name, ...) virtual void name(__VA_ARGS__) = 0;
#include "runtime/backend_kernels.inc"
};

// gemm_bias as two of the backend's kernels: c = bias in every row (gather_rows), then c += op(a)
// op(b) (gemm with beta 1). For a backend, or a case, without a GEMM that adds the bias itself.
void gemm_bias_by_rows(Backend& backend, const GemmDesc& g, const Tensor& a, const Tensor& b, const Tensor& bias,
                       Tensor& c);

Backend& backend_for(Device device);
void register_backend(DeviceType type, Backend* backend);

}  // namespace mt
