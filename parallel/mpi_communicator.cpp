#include <mpi.h>

#include <cstdlib>
#include <cstring>

#include "parallel/communicator.h"
#include "parallel/self_communicator.h"
#include "runtime/error.h"

namespace mt::parallel {
namespace {

MPI_Datatype mpi_type(DType t, const char* op) {
  switch (t) {
    case DType::F32:
      return MPI_FLOAT;
    case DType::F64:
      return MPI_DOUBLE;
    case DType::I32:
      return MPI_INT32_T;
    case DType::I64:
      return MPI_INT64_T;
    case DType::BF16:
    case DType::F16:
      break;
  }
  throw Error(std::string(op) + ": dtype " + dtype_name(t) + " has no MPI reduction (use f32/f64/i32/i64)");
}

// For pure data movement any dtype travels as bytes.
struct Bytes {
  MPI_Datatype type;
  int64_t per_element;
};
Bytes as_bytes(DType t) {
  return {MPI_BYTE, int64_t(dtype_size(t))};
}

int to_int(int64_t v, const char* op) {
  MT_CHECK(v >= 0 && v <= 0x7fffffff, op, ": a message of ", v, " elements exceeds MPI's int count");
  return int(v);
}

// MPI moves host memory. A tensor in GPU memory is staged through a host copy (correct on any MPI,
// CUDA-aware or not; training on GPUs uses NCCL for its device tensors when it is built,
// parallel/device_routed_communicator.h).
Tensor on_host(const Tensor& t) {
  return t.device().is_cpu() ? t : t.to(Device::cpu());
}
Tensor host_buffer(const Tensor& t) {
  return t.device().is_cpu() ? t : Tensor::empty(t.shape(), t.dtype());
}
void write_back(const Tensor& host, Tensor& t) {
  if (!t.device().is_cpu()) t.copy_from(host);
}

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm comm, bool owned) : comm_(comm), owned_(owned) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owned_ && !finalized) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }

  void all_reduce(Tensor& t_any, ReduceKind kind) override {
    check_defined(t_any, "all_reduce");
    Tensor t = on_host(t_any);
    MPI_Op op = kind == ReduceKind::Max ? MPI_MAX : MPI_SUM;
    check(MPI_Allreduce(MPI_IN_PLACE, t.raw(), to_int(t.numel(), "all_reduce"), mpi_type(t.dtype(), "all_reduce"), op,
                        comm_),
          "all_reduce");
    if (kind == ReduceKind::Avg) scale(t, 1.0 / double(size_));
    write_back(t, t_any);
  }

  void all_gather(const Tensor& in_any, Tensor& out_any) override {
    check_defined(in_any, "all_gather");
    Tensor in = on_host(in_any), out = host_buffer(out_any);
    MT_CHECK(out.numel() == in.numel() * size_ && out.dtype() == in.dtype(), "all_gather on rank ", rank_, ": out ",
             out.str(), " must hold ", size_, " x ", in.str());
    Bytes b = as_bytes(in.dtype());
    int n = to_int(in.numel() * b.per_element, "all_gather");
    check(MPI_Allgather(in.raw(), n, b.type, out.raw(), n, b.type, comm_), "all_gather");
    write_back(out, out_any);
  }

  void reduce_scatter(const Tensor& in_any, Tensor& out_any, ReduceKind kind) override {
    check_defined(in_any, "reduce_scatter");
    Tensor in = on_host(in_any), out = host_buffer(out_any);
    MT_CHECK(in.numel() == out.numel() * size_ && out.dtype() == in.dtype(), "reduce_scatter on rank ", rank_, ": in ",
             in.str(), " must hold ", size_, " x out ", out.str());
    MPI_Op op = kind == ReduceKind::Max ? MPI_MAX : MPI_SUM;
    check(MPI_Reduce_scatter_block(in.raw(), out.raw(), to_int(out.numel(), "reduce_scatter"),
                                   mpi_type(in.dtype(), "reduce_scatter"), op, comm_),
          "reduce_scatter");
    if (kind == ReduceKind::Avg) scale(out, 1.0 / double(size_));
    write_back(out, out_any);
  }

  void broadcast(Tensor& t_any, int root) override {
    check_defined(t_any, "broadcast");
    Tensor t = on_host(t_any);
    MT_CHECK(root >= 0 && root < size_, "broadcast: root ", root, " outside the group of ", size_);
    Bytes b = as_bytes(t.dtype());
    check(MPI_Bcast(t.raw(), to_int(t.numel() * b.per_element, "broadcast"), b.type, root, comm_), "broadcast");
    write_back(t, t_any);
  }

  void all_to_all(const Tensor& in_any, Tensor& out_any) override {
    check_defined(in_any, "all_to_all");
    Tensor in = on_host(in_any), out = host_buffer(out_any);
    MT_CHECK(in.numel() % size_ == 0 && out.numel() == in.numel() && out.dtype() == in.dtype(), "all_to_all on rank ",
             rank_, ": in ", in.str(), " must split into ", size_, " equal chunks and out ", out.str(), " match it");
    Bytes b = as_bytes(in.dtype());
    int n = to_int(in.numel() / size_ * b.per_element, "all_to_all");
    check(MPI_Alltoall(in.raw(), n, b.type, out.raw(), n, b.type, comm_), "all_to_all");
    write_back(out, out_any);
  }

  void all_to_all_v(const Tensor& in_any, const std::vector<int64_t>& send_rows, Tensor& out_any,
                    const std::vector<int64_t>& recv_rows) override {
    check_defined(in_any, "all_to_all_v");
    Tensor in = on_host(in_any), out = host_buffer(out_any);
    MT_CHECK(int(send_rows.size()) == size_ && int(recv_rows.size()) == size_ && out.dtype() == in.dtype(),
             "all_to_all_v on rank ", rank_, ": one send and one receive count per rank (", size_, ")");
    int64_t row_bytes = in.dim() > 0 && in.size(0) > 0     ? int64_t(in.nbytes()) / in.size(0)
                        : out.dim() > 0 && out.size(0) > 0 ? int64_t(out.nbytes()) / out.size(0)
                                                           : 0;
    const size_t n = static_cast<size_t>(size_);
    std::vector<int> sc(n), sd(n), rc(n), rd(n);
    int64_t so = 0, ro = 0;
    for (int j = 0; j < size_; ++j) {
      sc[size_t(j)] = to_int(send_rows[size_t(j)] * row_bytes, "all_to_all_v");
      rc[size_t(j)] = to_int(recv_rows[size_t(j)] * row_bytes, "all_to_all_v");
      sd[size_t(j)] = to_int(so, "all_to_all_v");
      rd[size_t(j)] = to_int(ro, "all_to_all_v");
      so += sc[size_t(j)];
      ro += rc[size_t(j)];
    }
    MT_CHECK(so == int64_t(in.nbytes()) && ro == int64_t(out.nbytes()), "all_to_all_v on rank ", rank_,
             ": the counts move ", so, " bytes out of ", in.str(), " and ", ro, " bytes into ", out.str());
    check(MPI_Alltoallv(in.raw(), sc.data(), sd.data(), MPI_BYTE, out.raw(), rc.data(), rd.data(), MPI_BYTE, comm_),
          "all_to_all_v");
    write_back(out, out_any);
  }

  void barrier() override { check(MPI_Barrier(comm_), "barrier"); }

  std::unique_ptr<Communicator> split(int color, int key) override {
    MPI_Comm sub;
    check(MPI_Comm_split(comm_, color, key, &sub), "split");
    return std::make_unique<MpiCommunicator>(sub, true);
  }

 private:
  void check(int code, const char* op) const {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(code, text, &len);
    throw Error(std::string(op) + " failed on rank " + std::to_string(rank_) + " of " + std::to_string(size_) + ": " +
                std::string(text, size_t(len)));
  }
  void check_defined(const Tensor& t, const char* op) const {
    MT_CHECK(t.defined(), op, " on rank ", rank_, ": an undefined tensor");
  }
  static void scale(Tensor& t, double factor) {
    if (t.dtype() == DType::F32) {
      float* p = t.data<float>();
      for (int64_t i = 0; i < t.numel(); ++i) p[i] = float(p[i] * factor);
    } else if (t.dtype() == DType::F64) {
      double* p = t.data<double>();
      for (int64_t i = 0; i < t.numel(); ++i) p[i] *= factor;
    } else {
      throw Error("all_reduce Avg: needs a float tensor, got " + t.str());
    }
  }

  MPI_Comm comm_;
  bool owned_;
  int rank_ = 0, size_ = 1;
};

void finalize_mpi() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

}  // namespace

void abort_other_ranks(int code) {
  int initialized = 0, finalized = 0, size = 1;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

Communicator& world() {
  static std::unique_ptr<Communicator> w = [] {
    int initialized = 0;
    MPI_Initialized(&initialized);
    // Started without a launcher: one rank, and MPI stays uninitialised (self_communicator.h).
    if (!initialized && !launched_by_mpi()) return make_self_communicator();
    if (!initialized) {
      int provided = 0;
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
      std::atexit(finalize_mpi);
    }
    return std::unique_ptr<Communicator>(new MpiCommunicator(MPI_COMM_WORLD, false));
  }();
  return *w;
}

}  // namespace mt::parallel
