#include "parallel/self_communicator.h"

#include <cstdlib>

#include "runtime/error.h"

namespace mt::parallel {
namespace {

class SelfCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "self"; }
  void all_reduce(Tensor&, ReduceKind) override {}  // sum, mean or max of one: itself
  void all_gather(const Tensor& in, Tensor& out) override { copy(in, out, "all_gather"); }
  void reduce_scatter(const Tensor& in, Tensor& out, ReduceKind) override { copy(in, out, "reduce_scatter"); }
  void reduce(Tensor&, ReduceKind, int root) override {
    MT_CHECK(root == 0, "reduce: root ", root, " in a group of one rank");
  }
  void broadcast(Tensor&, int root) override {
    MT_CHECK(root == 0, "broadcast: root ", root, " in a group of one rank");
  }
  void all_to_all(const Tensor& in, Tensor& out) override { copy(in, out, "all_to_all"); }
  void all_to_all_v(const Tensor& in, const std::vector<int64_t>& send_rows, Tensor& out,
                    const std::vector<int64_t>& recv_rows) override {
    MT_CHECK(send_rows.size() == 1 && recv_rows.size() == 1 && send_rows[0] == recv_rows[0],
             "all_to_all_v: ", "one rank sends itself what it receives (", send_rows.size(), " / ", recv_rows.size(),
             " counts)");
    if (send_rows[0] > 0) copy(in.narrow(0, send_rows[0]), out, "all_to_all_v");
  }
  void barrier() override {}
  std::unique_ptr<Communicator> split(int, int) override { return make_self_communicator(); }

 private:
  static void copy(const Tensor& in, Tensor& out, const char* op) {
    MT_CHECK(in.numel() <= out.numel(), op, ": ", in.str(), " does not fit ", out.str());
    if (in.numel() == 0) return;
    Tensor dst = out.numel() == in.numel() ? out : out.reshape({-1}).narrow(0, in.numel());
    dst.copy_from(in);
  }
};

}  // namespace

std::unique_ptr<Communicator> make_self_communicator() {
  return std::make_unique<SelfCommunicator>();
}

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK", "MPI_LOCALNRANKS",
                        "MV2_COMM_WORLD_SIZE", "HYDRA_CONTROL_FD"})
    if (std::getenv(v)) return true;
  return false;
}

}  // namespace mt::parallel
