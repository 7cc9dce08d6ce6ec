// Differentiable collectives: the communication steps of expert and tensor parallelism as
// autograd ops, each with the adjoint collective as its backward.
//   all_to_all(x)          x [p*m, ...] -> [p*m, ...]: chunk j to rank j, received in source order.
//                          Its adjoint is the same all_to_all (the gradient of received chunk j
//                          goes back to rank j, into the slot it came from).
//   all_to_all_v(x, s, r)  the same with s[j] rows sent to and r[j] rows received from rank j;
//                          backward sends r[j] rows back and receives s[j].
//   copy_to_group(x)       identity forward; backward all-reduces (sums) the gradient over the
//                          group (Megatron's "f" before a column-parallel matmul).
//   reduce_from_group(x)   forward sums x over the group; backward passes the gradient unchanged
//                          (Megatron's "g" after a row-parallel matmul).
// Every rank of the group must run the same ops in the same order, forward and backward: the
// backward of a collective is itself collective, so each rank's loss must depend on each
// collective's output (true for the MoE layer and the tensor-parallel layers). The communicator
// must outlive the tape that recorded the op.
#pragma once

#include <vector>

#include "autograd/variable.h"
#include "parallel/communicator.h"

namespace mt::parallel {

Variable all_to_all(const Variable& x, Communicator& comm);
Variable all_to_all_v(const Variable& x, const std::vector<int64_t>& send_rows, const std::vector<int64_t>& recv_rows,
                      Communicator& comm);
Variable copy_to_group(const Variable& x, Communicator& comm);
Variable reduce_from_group(const Variable& x, Communicator& comm);

}  // namespace mt::parallel
