// Collective communication between the ranks of a group. One interface, one implementation per
// transport: MPI for CPU tensors (parallel/mpi_communicator.cpp), NCCL for CUDA tensors (with the
// CUDA backend). Tensors are contiguous; "rows" are the slices along dimension 0.
//   all_reduce      in place; Sum, Avg (sum / size) or Max
//   all_gather      out [size * n] <- every rank's in [n], in rank order
//   reduce_scatter  in [size * n] -> out [n]: rank r gets chunk r of the element-wise reduction
//   reduce          in place on `root` only: the element-wise reduction of every rank's t (the other
//                   ranks' t is left as it was)
//   broadcast       in place from `root`
//   all_to_all      in [size * m, ...] -> out [size * m, ...]: chunk j goes to rank j; received
//                   chunks are stored in source-rank order (equal splits)
//   all_to_all_v    the same with per-rank row counts (send_rows[j] rows to rank j,
//                   recv_rows[j] rows from rank j)
//   split           sub-groups: ranks with the same color form a group, ordered by key
// Every call is collective: all ranks of the group must make it, in the same order. Errors (a
// failed call, mismatched sizes) throw mt::Error naming the operation and this rank. A collective
// whose peers do not all arrive within the timeout ends the job with a message naming it, its
// group and the ranks that did not arrive (parallel/watchdog.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/tensor.h"

namespace mt::parallel {

enum class ReduceKind { Sum, Avg, Max };

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string name() const = 0;  // "mpi", "nccl"

  virtual void all_reduce(Tensor& t, ReduceKind kind) = 0;
  virtual void all_gather(const Tensor& in, Tensor& out) = 0;
  virtual void reduce_scatter(const Tensor& in, Tensor& out, ReduceKind kind) = 0;
  virtual void reduce(Tensor& t, ReduceKind kind, int root) = 0;
  virtual void broadcast(Tensor& t, int root) = 0;
  virtual void all_to_all(const Tensor& in, Tensor& out) = 0;
  virtual void all_to_all_v(const Tensor& in, const std::vector<int64_t>& send_rows, Tensor& out,
                            const std::vector<int64_t>& recv_rows) = 0;
  virtual void barrier() = 0;
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;

  // The group's name in messages ("world", "data parallel", ...); make_process_groups names them.
  virtual void set_group_name(const std::string& name) { group_name_ = name; }
  const std::string& group_name() const { return group_name_; }

 protected:
  std::string group_name_;
};

// The element-wise sum of `values` over the ranks of `group` (one all-reduce of a small host
// vector: per-layer statistics, counts); `values` as they are without a group or with one rank.
inline std::vector<double> sum_over_ranks(std::vector<double> values, Communicator* group) {
  if (!group || group->size() == 1 || values.empty()) return values;
  Tensor t = Tensor::from_vector(values, {int64_t(values.size())});
  group->all_reduce(t, ReduceKind::Sum);
  return t.to_double_vector();
}

// The world of processes started by mpirun / srun: initialises MPI on first use and finalises it
// at exit. A process started without a launcher gets a one-rank world that never touches MPI.
Communicator& world();

// After an error on one rank: ends every process of the job (MPI_Abort) when MPI runs with more
// than one process, so that the other ranks do not wait forever in their next collective.
// Returns normally in a single process.
void abort_other_ranks(int code);

}  // namespace mt::parallel
