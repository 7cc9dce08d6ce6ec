// Differentiable collectives against finite differences of the whole job's loss, in float64.
// Each rank's loss is sum(w_r * gelu(op(x_r))); the job's loss is the sum over ranks. Perturbing
// one element of x on one rank and re-running the forward on every rank gives dL/dx there, which
// must equal that rank's backward. Tensor parallelism's pair is checked with its own semantics:
// copy_to_group takes one replicated x (perturbed on every rank at once), reduce_from_group feeds a
// replicated computation whose loss counts once (the mean over ranks). Run under mpirun -np 2, 4.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "nn/kd_loss.h"
#include "parallel/collective_ops.h"
#include "parallel/shards.h"
#include "parallel/tensor_parallel.h"

using namespace mt;
using namespace mt::parallel;

namespace {

using CollectiveOp = std::function<Variable(const Variable&)>;

std::vector<double> ramp(int64_t n, double scale, double offset) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = scale * std::sin(0.7 * double(i) + offset);
  return v;
}

// This rank's loss sum(w * gelu(op(x))), without recording.
double local_loss(const CollectiveOp& op, const Tensor& x, const Tensor& w) {
  NoGradGuard guard;
  std::vector<double> y = ag::multiply(ag::gelu(op(Variable(x))), w).value().to_double_vector();
  double s = 0;
  for (double v : y) s += v;
  return s;
}

// How the ranks' inputs and losses relate.
enum class Replicated { None, Input, Output };

double job_loss(const CollectiveOp& op, const Tensor& x, const Tensor& w, Replicated mode) {
  Tensor l = Tensor::from_vector(std::vector<double>{local_loss(op, x, w)}, {1});
  world().all_reduce(l, mode == Replicated::Output ? ReduceKind::Avg : ReduceKind::Sum);
  return l.to_double_vector()[0];
}

// x: this rank's input shape; out_shape: the op's output shape on this rank.
void check_gradient(const CollectiveOp& op, const Shape& x_shape, const Shape& out_shape,
                    Replicated mode = Replicated::None) {
  Communicator& c = world();
  int rank = c.rank();
  double x_offset = mode == Replicated::Input ? 0.0 : 0.3 * rank;
  double w_offset = mode == Replicated::Output ? 1.1 : 1.1 + rank;
  Tensor x = Tensor::from_vector(ramp(shape_numel(x_shape), 1.0, x_offset), x_shape);
  Tensor w = Tensor::from_vector(ramp(shape_numel(out_shape), 0.5, w_offset), out_shape);
  Variable xv(x.clone(), true);
  Variable y = ag::multiply(ag::gelu(op(xv)), w);
  current_tape().backward(y, nullptr);
  std::vector<double> analytic = xv.grad().to_double_vector();

  const double eps = 1e-6;
  double worst = 0;
  for (int owner = 0; owner < c.size(); ++owner) {
    // Every rank learns the owner's element count so that all run the same number of forwards.
    Tensor n = Tensor::from_vector(std::vector<double>{double(x.numel())}, {1});
    c.broadcast(n, owner);
    for (int64_t i = 0; i < int64_t(n.to_double_vector()[0]); ++i) {
      std::vector<double> plus = x.to_double_vector(), minus = plus;
      if (rank == owner || mode == Replicated::Input) {  // a replicated x changes everywhere
        plus[size_t(i)] += eps;
        minus[size_t(i)] -= eps;
      }
      double lp = job_loss(op, Tensor::from_vector(plus, x_shape), w, mode);
      double lm = job_loss(op, Tensor::from_vector(minus, x_shape), w, mode);
      if (rank == owner) worst = std::max(worst, std::abs((lp - lm) / (2 * eps) - analytic[size_t(i)]));
    }
  }
  INFO("rank " << rank);
  REQUIRE(worst < 1e-8);
}

}  // namespace

TEST_CASE("all_to_all backward is the adjoint all_to_all", "[parallel][mpi][collective_ops]") {
  int p = world().size();
  check_gradient([](const Variable& x) { return all_to_all(x, world()); }, {2 * p, 3}, {2 * p, 3});
}

TEST_CASE("all_to_all_v backward swaps the row counts", "[parallel][mpi][collective_ops]") {
  Communicator& c = world();
  int p = c.size(), r = c.rank();
  // Rank r sends (r + j) % 3 rows to rank j (zero rows included), so it receives (j + r) % 3 from j.
  std::vector<int64_t> send(static_cast<size_t>(p)), recv(static_cast<size_t>(p));
  int64_t sent = 0, received = 0;
  for (int j = 0; j < p; ++j) {
    send[size_t(j)] = (r + j) % 3;
    recv[size_t(j)] = (j + r) % 3;
    sent += send[size_t(j)];
    received += recv[size_t(j)];
  }
  check_gradient([&](const Variable& x) { return all_to_all_v(x, send, recv, c); }, {sent, 2}, {received, 2});
}

TEST_CASE("copy_to_group and reduce_from_group are each other's adjoint", "[parallel][mpi][collective_ops]") {
  check_gradient([](const Variable& x) { return copy_to_group(x, world()); }, {2, 3}, {2, 3}, Replicated::Input);
  check_gradient([](const Variable& x) { return reduce_from_group(x, world()); }, {2, 3}, {2, 3}, Replicated::Output);
}

TEST_CASE("vocab-parallel embedding and cross-entropy backward match finite differences",
          "[parallel][mpi][collective_ops][tensor]") {
  Communicator& c = world();
  int p = c.size();
  // 5 rows over a vocabulary of 3p ids: each rank's shard holds 3 of them; targets and ids spread
  // over all shards, one row masked out.
  std::vector<int32_t> ids = {0, 4, 2, 3 * p - 1, 3 * p - 2};
  Tensor targets = Tensor::from_vector(ids, {5});
  Tensor mask = Tensor::from_vector(std::vector<double>{1, 1, 0, 1, 1}, {5});
  check_gradient([&](const Variable& logits) { return vocab_parallel_cross_entropy(logits, targets, mask, &c); },
                 {5, 3}, {}, Replicated::Output);
  // KD over the whole vocabulary from each rank's columns (teacher logits differ per rank's shard).
  Tensor teacher = Tensor::from_vector(ramp(15, 2.0, 0.9 + c.rank()), {5, 3});
  check_gradient([&](const Variable& s) { return nn::kd_loss(s, teacher, 1.5, 0.7, mask, &c); }, {5, 3}, {},
                 Replicated::Output);
  {  // and the value equals the single-process loss on the whole logits
    Tensor student = Tensor::from_vector(ramp(15, 1.0, 0.2 * c.rank()), {5, 3});
    auto whole = [&](const Tensor& local) {
      Tensor all = Tensor::empty({p * 15}, DType::F64);
      c.all_gather(local.reshape({15}), all);
      std::vector<Tensor> shards;
      for (int r = 0; r < p; ++r) shards.push_back(all.narrow(r * 15, 15).reshape({5, 3}));
      return merge_shards(shards, {1, 1});
    };
    double split = nn::kd_loss(Variable(student), teacher, 1.5, 0.7, mask, &c).value().item();
    double single = nn::kd_loss(Variable(whole(student)), whole(teacher), 1.5, 0.7, mask).value().item();
    REQUIRE(split == Approx(single).epsilon(1e-12));
  }
  Tensor tokens = Tensor::from_vector(ids, {1, 5});
  check_gradient([&](const Variable& wte) { return vocab_parallel_embedding(tokens, wte, &c); }, {3, 2}, {1, 5, 2},
                 Replicated::Output);
}

TEST_CASE("all_to_all forward places chunk j of rank i at chunk i of rank j", "[parallel][mpi][collective_ops]") {
  Communicator& c = world();
  int p = c.size(), r = c.rank();
  std::vector<double> v;
  for (int j = 0; j < p; ++j) v.push_back(10.0 * r + j);  // chunk j of rank r holds 10r + j
  Variable y = all_to_all(Variable(Tensor::from_vector(v, {p})), c);
  for (int i = 0; i < p; ++i) REQUIRE(y.value().to_double_vector()[size_t(i)] == 10.0 * i + r);
}
