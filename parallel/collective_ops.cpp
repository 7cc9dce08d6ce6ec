// Differentiable collectives (see collective_ops.h): forward collective + adjoint backward.
#include "parallel/collective_ops.h"

#include <numeric>

#include "autograd/tape.h"
#include "runtime/ops.h"

namespace mt::parallel {

namespace {

// [rows, rest of x's shape]
Shape with_rows(const Tensor& x, int64_t rows) {
  Shape s = x.shape();
  s[0] = rows;
  return s;
}

// out [sum recv, ...] <- x [sum send, ...] exchanged with per-rank row counts.
Tensor exchange(const Tensor& x, const std::vector<int64_t>& send, const std::vector<int64_t>& recv,
                Communicator& comm) {
  Tensor out =
      Tensor::empty(with_rows(x, std::accumulate(recv.begin(), recv.end(), int64_t(0))), x.dtype(), x.device());
  comm.all_to_all_v(x, send, out, recv);
  return out;
}

// out [p*m, ...] <- x [p*m, ...] exchanged in equal chunks.
Tensor exchange(const Tensor& x, Communicator& comm) {
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  comm.all_to_all(x, out);
  return out;
}

}  // namespace

Variable all_to_all(const Variable& x, Communicator& comm) {
  require_defined("all_to_all", {{"x", &x}});
  Variable y(exchange(x.value(), comm));
  if (any_requires_grad({&x})) {
    record_op("all_to_all", y, [xs = x.grad_slot(), c = &comm](const Tensor& dy) {
      Tensor g = xs.grad_ref();
      ops::add_(g, exchange(dy, *c));
    });
  }
  return y;
}

Variable all_to_all_v(const Variable& x, const std::vector<int64_t>& send_rows, const std::vector<int64_t>& recv_rows,
                      Communicator& comm) {
  require_defined("all_to_all_v", {{"x", &x}});
  Variable y(exchange(x.value(), send_rows, recv_rows, comm));
  if (any_requires_grad({&x})) {
    record_op("all_to_all_v", y, [xs = x.grad_slot(), send_rows, recv_rows, c = &comm](const Tensor& dy) {
      Tensor g = xs.grad_ref();
      ops::add_(g, exchange(dy, recv_rows, send_rows, *c));
    });
  }
  return y;
}

Variable copy_to_group(const Variable& x, Communicator& comm) {
  require_defined("copy_to_group", {{"x", &x}});
  Variable y(x.value());
  if (any_requires_grad({&x})) {
    record_op("copy_to_group", y, [xs = x.grad_slot(), c = &comm](const Tensor& dy) {
      Tensor summed = dy.clone();
      c->all_reduce(summed, ReduceKind::Sum);
      Tensor g = xs.grad_ref();
      ops::add_(g, summed);
    });
  }
  return y;
}

Variable reduce_from_group(const Variable& x, Communicator& comm) {
  require_defined("reduce_from_group", {{"x", &x}});
  Tensor summed = x.value().clone();
  comm.all_reduce(summed, ReduceKind::Sum);
  Variable y(summed);
  if (any_requires_grad({&x})) {
    record_op("reduce_from_group", y, [xs = x.grad_slot()](const Tensor& dy) {
      Tensor g = xs.grad_ref();
      ops::add_(g, dy);
    });
  }
  return y;
}

}  // namespace mt::parallel
