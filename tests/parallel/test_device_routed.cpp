// The device-routed communicator (parallel/device_routed_communicator.h): host tensors go to the
// host communicator, and split() keeps routing in the sub-groups. (GPU tensors going to the device
// communicator is exercised on a GPU machine by training under mpirun with device cuda.)
#include <catch2/catch.hpp>

#include "parallel/device_routed_communicator.h"
#include "parallel/self_communicator.h"

using namespace mt;
using namespace mt::parallel;

namespace {

// A one-rank communicator that counts the collectives it carries.
class Counting final : public Communicator {
 public:
  explicit Counting(int* calls) : inner_(make_self_communicator()), calls_(calls) {}
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "counting"; }
  void all_reduce(Tensor& t, ReduceKind k) override { ++*calls_, inner_->all_reduce(t, k); }
  void all_gather(const Tensor& in, Tensor& out) override { ++*calls_, inner_->all_gather(in, out); }
  void reduce_scatter(const Tensor& in, Tensor& out, ReduceKind k) override {
    ++*calls_, inner_->reduce_scatter(in, out, k);
  }
  void reduce(Tensor& t, ReduceKind k, int root) override { ++*calls_, inner_->reduce(t, k, root); }
  void broadcast(Tensor& t, int root) override { ++*calls_, inner_->broadcast(t, root); }
  void all_to_all(const Tensor& in, Tensor& out) override { ++*calls_, inner_->all_to_all(in, out); }
  void all_to_all_v(const Tensor& in, const std::vector<int64_t>& s, Tensor& out,
                    const std::vector<int64_t>& r) override {
    ++*calls_, inner_->all_to_all_v(in, s, out, r);
  }
  void barrier() override { ++*calls_; }
  std::unique_ptr<Communicator> split(int, int) override { return std::make_unique<Counting>(calls_); }

 private:
  std::unique_ptr<Communicator> inner_;
  int* calls_;
};

}  // namespace

TEST_CASE("a device-routed communicator sends host tensors over the host communicator", "[parallel]") {
  int host_calls = 0, device_calls = 0;
  auto routed = make_device_routed_communicator(std::make_shared<Counting>(&host_calls),
                                                std::make_unique<Counting>(&device_calls));
  CHECK(routed->name() == "counting+counting");
  Tensor t = Tensor::from_vector(std::vector<float>{1, 2, 3}, {3});
  routed->all_reduce(t, ReduceKind::Sum);
  Tensor out = Tensor::empty({3}, DType::F32);
  routed->all_gather(t, out);
  std::unique_ptr<Communicator> sub = routed->split(0, 0);
  sub->all_to_all(t, out);
  sub->barrier();
  CHECK(host_calls == 4);
  CHECK(device_calls == 0);
  CHECK(out.to_double_vector() == std::vector<double>{1, 2, 3});
}
