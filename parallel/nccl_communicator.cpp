// The NCCL communicator: the same collectives on CUDA tensors, on the current CUDA stream of
// each call (calls are synchronous: the stream is synchronised before returning, so a caller can
// use the result at once; overlapping communication comes with the CUDA backend). The wait polls
// the stream under the collective watchdog (parallel/watchdog.h): a rank that does not arrive
// ends the job after the timeout instead of leaving the others spinning on their GPUs. The NCCL
// unique id is created by rank 0 and broadcast over MPI. Built when the CUDA toolkit and NCCL are
// found (MOETRAIN_HAVE_NCCL); exercised on a GPU by the CUDA issue's device check.
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>

#include "parallel/communicator.h"
#include "parallel/nccl.h"
#include "parallel/watchdog.h"
#include "runtime/error.h"

namespace mt::parallel {
namespace {

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::F32:
      return ncclFloat32;
    case DType::F64:
      return ncclFloat64;
    case DType::BF16:
      return ncclBfloat16;
    case DType::F16:
      return ncclFloat16;
    case DType::I32:
      return ncclInt32;
    case DType::I64:
      return ncclInt64;
  }
  return ncclFloat32;
}

ncclRedOp_t nccl_op(ReduceKind k) {
  switch (k) {
    case ReduceKind::Sum:
      return ncclSum;
    case ReduceKind::Avg:
      return ncclAvg;
    case ReduceKind::Max:
      return ncclMax;
  }
  return ncclSum;
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(ncclComm_t comm, int rank, int size) : comm_(comm), rank_(rank), size_(size) {}
  ~NcclCommunicator() override {
    if (comm_) ncclCommDestroy(comm_);  // null after a timeout aborted it
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "nccl"; }

  void all_reduce(Tensor& t, ReduceKind kind) override {
    check_cuda(t, "all_reduce");
    check(ncclAllReduce(t.raw(), t.raw(), size_t(t.numel()), nccl_type(t.dtype()), nccl_op(kind), comm_, nullptr),
          "all_reduce");
    sync("all_reduce");
  }
  void all_gather(const Tensor& in, Tensor& out) override {
    check_cuda(in, "all_gather");
    MT_CHECK(out.numel() == in.numel() * size_ && out.dtype() == in.dtype(), "all_gather on rank ", rank_, ": out ",
             out.str(), " must hold ", size_, " x ", in.str());
    check(ncclAllGather(in.raw(), out.raw(), size_t(in.numel()), nccl_type(in.dtype()), comm_, nullptr), "all_gather");
    sync("all_gather");
  }
  void reduce_scatter(const Tensor& in, Tensor& out, ReduceKind kind) override {
    check_cuda(in, "reduce_scatter");
    MT_CHECK(in.numel() == out.numel() * size_ && out.dtype() == in.dtype(), "reduce_scatter on rank ", rank_, ": in ",
             in.str(), " must hold ", size_, " x out ", out.str());
    check(ncclReduceScatter(in.raw(), out.raw(), size_t(out.numel()), nccl_type(in.dtype()), nccl_op(kind), comm_,
                            nullptr),
          "reduce_scatter");
    sync("reduce_scatter");
  }
  void reduce(Tensor& t, ReduceKind kind, int root) override {
    check_cuda(t, "reduce");
    MT_CHECK(root >= 0 && root < size_, "reduce: root ", root, " outside the group of ", size_);
    check(ncclReduce(t.raw(), t.raw(), size_t(t.numel()), nccl_type(t.dtype()), nccl_op(kind), root, comm_, nullptr),
          "reduce");
    sync("reduce");
  }
  void broadcast(Tensor& t, int root) override {
    check_cuda(t, "broadcast");
    MT_CHECK(root >= 0 && root < size_, "broadcast: root ", root, " outside the group of ", size_);
    check(ncclBroadcast(t.raw(), t.raw(), size_t(t.numel()), nccl_type(t.dtype()), root, comm_, nullptr), "broadcast");
    sync("broadcast");
  }
  void all_to_all(const Tensor& in, Tensor& out) override {
    MT_CHECK(in.numel() % size_ == 0 && out.numel() == in.numel(), "all_to_all on rank ", rank_, ": in ", in.str(),
             " must split into ", size_, " equal chunks and out ", out.str(), " match it");
    std::vector<int64_t> rows(size_t(size_), in.size(0) / size_);
    all_to_all_v(in, rows, out, rows);
  }
  void all_to_all_v(const Tensor& in, const std::vector<int64_t>& send_rows, Tensor& out,
                    const std::vector<int64_t>& recv_rows) override {
    check_cuda(in, "all_to_all_v");
    int64_t row = in.dim() > 0 && in.size(0) > 0     ? in.numel() / in.size(0)
                  : out.dim() > 0 && out.size(0) > 0 ? out.numel() / out.size(0)
                                                     : 0;
    size_t item = dtype_size(in.dtype());
    const char* src = static_cast<const char*>(in.raw());
    char* dst = static_cast<char*>(out.raw());
    check(ncclGroupStart(), "all_to_all_v");
    try {  // the group is closed on every path: an open group would make later NCCL calls hang
      int64_t so = 0, ro = 0;
      for (int j = 0; j < size_; ++j) {
        size_t sn = size_t(send_rows[size_t(j)] * row), rn = size_t(recv_rows[size_t(j)] * row);
        check(ncclSend(src + so * item, sn, nccl_type(in.dtype()), j, comm_, nullptr), "all_to_all_v");
        check(ncclRecv(dst + ro * item, rn, nccl_type(in.dtype()), j, comm_, nullptr), "all_to_all_v");
        so += int64_t(sn);
        ro += int64_t(rn);
      }
    } catch (...) {
      (void)ncclGroupEnd();
      throw;
    }
    check(ncclGroupEnd(), "all_to_all_v");
    sync("all_to_all_v");
  }
  void barrier() override {
    float* one = nullptr;
    check_rt(cudaMalloc(&one, sizeof(float)), "barrier");
    check(ncclAllReduce(one, one, 1, ncclFloat32, ncclSum, comm_, nullptr), "barrier");
    sync("barrier");
    cudaFree(one);
  }
  std::unique_ptr<Communicator> split(int color, int key) override {
    ncclComm_t sub;
    check(ncclCommSplit(comm_, color, key, &sub, nullptr), "split");
    int r = 0, n = 0;
    check(ncclCommUserRank(sub, &r), "split (its rank)");
    check(ncclCommCount(sub, &n), "split (its size)");
    return std::make_unique<NcclCommunicator>(sub, r, n);
  }

 private:
  void check(ncclResult_t code, const char* op) const {
    if (code != ncclSuccess)
      throw Error(std::string("NCCL ") + op + " failed on rank " + std::to_string(rank_) + ": " +
                  ncclGetErrorString(code));
  }
  void check_rt(cudaError_t code, const char* op) const {
    if (code != cudaSuccess)
      throw Error(std::string("CUDA error in ") + op + " on rank " + std::to_string(rank_) + ": " +
                  cudaGetErrorString(code));
  }
  // Waits for the collective just enqueued, under the watchdog; after the timeout the NCCL
  // communicator is aborted (its kernels end) and the collective fails naming itself and its group.
  void sync(const char* op) {
    ++seq_;
    cudaError_t code = cudaSuccess;
    if (!wait_for_collective([&] { return (code = cudaStreamQuery(nullptr)) != cudaErrorNotReady; })) {
      ncclCommAbort(comm_);
      comm_ = nullptr;
      std::string group = group_name_.empty() ? "a group" : "the " + group_name_ + " group";
      fail_collective("NCCL " + std::string(op) + " #" + std::to_string(seq_) + " on " + group + " (" +
                      std::to_string(size_) + " ranks) has waited " + duration_text(collective_timeout_seconds()) +
                      " on world rank " + std::to_string(world().rank()) +
                      ": a rank of the group did not arrive (NCCL does not say which; a rank that did not "
                      "prints no such message). " +
                      timeout_advice());
    }
    check_rt(code, op);
  }
  void check_cuda(const Tensor& t, const char* op) const {
    MT_CHECK(t.defined() && t.device().is_cuda(), op, " on rank ", rank_,
             ": the NCCL communicator moves CUDA tensors; got ", t.str(), " on ", t.device().str());
  }

  ncclComm_t comm_;
  int rank_, size_;
  uint64_t seq_ = 0;  // collectives entered on this group
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, int cuda_device) {
  MT_CHECK(cudaSetDevice(cuda_device) == cudaSuccess, "rank ", bootstrap.rank(), ": cannot select CUDA device ",
           cuda_device);
  ncclUniqueId id;
  if (bootstrap.rank() == 0) MT_CHECK(ncclGetUniqueId(&id) == ncclSuccess, "NCCL: cannot create a unique id");
  // The id's bytes travel over the CPU transport in a 2-byte-element tensor (broadcast moves bytes).
  Tensor bytes = Tensor::empty({int64_t((sizeof(id) + 1) / 2)}, DType::BF16);
  std::memcpy(bytes.raw(), &id, sizeof(id));
  bootstrap.broadcast(bytes, 0);
  std::memcpy(&id, bytes.raw(), sizeof(id));
  ncclComm_t comm;
  ncclResult_t r = ncclCommInitRank(&comm, bootstrap.size(), id, bootstrap.rank());
  MT_CHECK(r == ncclSuccess, "NCCL initialisation failed on rank ", bootstrap.rank(), ": ", ncclGetErrorString(r));
  return std::make_unique<NcclCommunicator>(comm, bootstrap.rank(), bootstrap.size());
}

}  // namespace mt::parallel
