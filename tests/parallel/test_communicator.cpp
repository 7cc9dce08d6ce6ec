// Every collective of the MPI communicator, on every rank, against values each rank can compute
// by itself. Run by CTest under `mpirun -np 2` and `mpirun -np 4`.
#include <catch2/catch.hpp>
#include <numeric>

#include "parallel/communicator.h"

using namespace mt;
using namespace mt::parallel;

namespace {
// A value that depends on the rank and the index, exactly representable.
double value(int rank, int64_t i) {
  return double(rank * 100 + i);
}
Tensor filled(int rank, int64_t n, DType dt) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = value(rank, i);
  return Tensor::from_vector(v, {n}).to(dt);
}
}  // namespace

TEST_CASE("all_reduce sum, avg and max", "[parallel][mpi]") {
  Communicator& w = world();
  int p = w.size();
  for (DType dt : {DType::F32, DType::F64, DType::I64}) {
    Tensor t = filled(w.rank(), 5, dt);
    w.all_reduce(t, ReduceKind::Sum);
    for (int64_t i = 0; i < 5; ++i) {
      double want = 0;
      for (int r = 0; r < p; ++r) want += value(r, i);
      REQUIRE(t.to_double_vector()[size_t(i)] == want);
    }
  }
  Tensor avg = filled(w.rank(), 3, DType::F64);
  w.all_reduce(avg, ReduceKind::Avg);
  REQUIRE(avg.to_double_vector()[1] == Approx((100.0 * (p - 1) * p / 2 + p * 1.0) / p));
  Tensor mx = filled(w.rank(), 3, DType::F32);
  w.all_reduce(mx, ReduceKind::Max);
  REQUIRE(mx.to_double_vector()[2] == value(p - 1, 2));
  Tensor bad = Tensor::zeros({2}, DType::BF16);
  REQUIRE_THROWS_WITH(w.all_reduce(bad, ReduceKind::Sum), Catch::Contains("bf16"));
}

TEST_CASE("all_gather, reduce_scatter, broadcast", "[parallel][mpi]") {
  Communicator& w = world();
  int p = w.size();
  Tensor in = filled(w.rank(), 4, DType::F32), out = Tensor::empty({4 * p}, DType::F32);
  w.all_gather(in, out);
  for (int r = 0; r < p; ++r)
    for (int64_t i = 0; i < 4; ++i) REQUIRE(out.to_double_vector()[size_t(r * 4 + i)] == value(r, i));

  Tensor big = filled(w.rank(), 3 * p, DType::F64), part = Tensor::empty({3}, DType::F64);
  w.reduce_scatter(big, part, ReduceKind::Sum);
  for (int64_t i = 0; i < 3; ++i) {
    double want = 0;
    for (int r = 0; r < p; ++r) want += value(r, w.rank() * 3 + i);
    REQUIRE(part.to_double_vector()[size_t(i)] == want);
  }

  Tensor b = filled(w.rank(), 6, DType::BF16);  // data movement works for any dtype
  w.broadcast(b, p - 1);
  REQUIRE(b.to_double_vector() == filled(p - 1, 6, DType::BF16).to_double_vector());
  REQUIRE_THROWS_WITH(w.broadcast(b, p), Catch::Contains("root"));
}

TEST_CASE("reduce to one root: the root gets the sum or the mean, the others keep theirs", "[parallel][mpi]") {
  Communicator& w = world();
  int p = w.size();
  for (int root = 0; root < p; ++root) {
    Tensor t = filled(w.rank(), 5, DType::F32);
    w.reduce(t, ReduceKind::Sum, root);
    for (int64_t i = 0; i < 5; ++i) {
      double want = 0;
      for (int r = 0; r < p; ++r) want += value(r, i);
      REQUIRE(t.to_double_vector()[size_t(i)] == (w.rank() == root ? want : value(w.rank(), i)));
    }
  }
  Tensor avg = filled(w.rank(), 3, DType::F64);
  w.reduce(avg, ReduceKind::Avg, 0);
  if (w.rank() == 0) REQUIRE(avg.to_double_vector()[1] == Approx((100.0 * (p - 1) * p / 2 + p * 1.0) / p));
  REQUIRE_THROWS_WITH(w.reduce(avg, ReduceKind::Sum, p), Catch::Contains("root"));
}

TEST_CASE("all_to_all and all_to_all_v", "[parallel][mpi]") {
  Communicator& w = world();
  int p = w.size(), me = w.rank();
  // Equal splits: rank me sends rows [2j, 2j+2) (value 1000*me + 10*j + row) to rank j.
  Tensor in = Tensor::empty({2 * p, 3}, DType::F32);
  for (int j = 0; j < p; ++j)
    for (int row = 0; row < 2; ++row)
      for (int c = 0; c < 3; ++c) in.data<float>()[(j * 2 + row) * 3 + c] = float(1000 * me + 10 * j + row + c);
  Tensor out = Tensor::empty({2 * p, 3}, DType::F32);
  w.all_to_all(in, out);
  for (int src = 0; src < p; ++src)
    for (int row = 0; row < 2; ++row)
      REQUIRE(out.data<float>()[(src * 2 + row) * 3] == float(1000 * src + 10 * me + row));

  // Counts: rank me sends (me + j) % 3 rows to rank j; so it receives (src + me) % 3 from src.
  std::vector<int64_t> send(static_cast<size_t>(p)), recv(static_cast<size_t>(p));
  int64_t total_send = 0, total_recv = 0;
  for (int j = 0; j < p; ++j) {
    send[size_t(j)] = (me + j) % 3;
    recv[size_t(j)] = (j + me) % 3;
    total_send += send[size_t(j)];
    total_recv += recv[size_t(j)];
  }
  Tensor vin = Tensor::empty({total_send, 2}, DType::I64), vout = Tensor::empty({total_recv, 2}, DType::I64);
  int64_t row = 0;
  for (int j = 0; j < p; ++j)
    for (int64_t k = 0; k < send[size_t(j)]; ++k, ++row) {
      vin.data<int64_t>()[row * 2] = 100 * me + j;  // who sent it, to whom
      vin.data<int64_t>()[row * 2 + 1] = k;
    }
  w.all_to_all_v(vin, send, vout, recv);
  row = 0;
  for (int src = 0; src < p; ++src)
    for (int64_t k = 0; k < recv[size_t(src)]; ++k, ++row) {
      REQUIRE(vout.data<int64_t>()[row * 2] == 100 * src + me);
      REQUIRE(vout.data<int64_t>()[row * 2 + 1] == k);
    }
  w.barrier();
}

TEST_CASE("split into sub-groups", "[parallel][mpi]") {
  Communicator& w = world();
  std::unique_ptr<Communicator> half = w.split(w.rank() % 2, w.rank());
  REQUIRE(half->size() == (w.size() + 1 - w.rank() % 2) / 2);
  REQUIRE(half->rank() == w.rank() / 2);
  Tensor t = Tensor::full({1}, double(w.rank()), DType::F64);
  half->all_reduce(t, ReduceKind::Sum);
  double want = 0;
  for (int r = w.rank() % 2; r < w.size(); r += 2) want += r;
  REQUIRE(t.item() == want);
}
