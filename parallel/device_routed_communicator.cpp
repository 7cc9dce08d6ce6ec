#include "parallel/device_routed_communicator.h"

#include "runtime/error.h"

namespace mt::parallel {
namespace {

class DeviceRoutedCommunicator final : public Communicator {
 public:
  DeviceRoutedCommunicator(std::shared_ptr<Communicator> host, std::shared_ptr<Communicator> device)
      : host_(std::move(host)), device_(std::move(device)) {
    MT_CHECK(host_->rank() == device_->rank() && host_->size() == device_->size(), "device-routed communicator: the ",
             host_->name(), " and ", device_->name(), " communicators disagree on rank or size");
  }
  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  std::string name() const override { return host_->name() + "+" + device_->name(); }

  void all_reduce(Tensor& t, ReduceKind kind) override { by(t).all_reduce(t, kind); }
  void all_gather(const Tensor& in, Tensor& out) override { by(in, out).all_gather(in, out); }
  void reduce_scatter(const Tensor& in, Tensor& out, ReduceKind kind) override {
    by(in, out).reduce_scatter(in, out, kind);
  }
  void reduce(Tensor& t, ReduceKind kind, int root) override { by(t).reduce(t, kind, root); }
  void broadcast(Tensor& t, int root) override { by(t).broadcast(t, root); }
  void all_to_all(const Tensor& in, Tensor& out) override { by(in, out).all_to_all(in, out); }
  void all_to_all_v(const Tensor& in, const std::vector<int64_t>& send_rows, Tensor& out,
                    const std::vector<int64_t>& recv_rows) override {
    by(in, out).all_to_all_v(in, send_rows, out, recv_rows);
  }
  void barrier() override { host_->barrier(); }
  // Both transports carry the group's name (their timeout messages name it).
  void set_group_name(const std::string& name) override {
    Communicator::set_group_name(name);
    host_->set_group_name(name);
    device_->set_group_name(name);
  }
  std::unique_ptr<Communicator> split(int color, int key) override {
    return std::make_unique<DeviceRoutedCommunicator>(host_->split(color, key), device_->split(color, key));
  }

 private:
  Communicator& by(const Tensor& t) { return t.device().is_cpu() ? *host_ : *device_; }
  Communicator& by(const Tensor& in, const Tensor& out) {
    MT_CHECK(in.device() == out.device(), name(), ": input on ", in.device().str(), " and output on ",
             out.device().str(), "; collectives need both on one device");
    return by(in);
  }

  std::shared_ptr<Communicator> host_, device_;
};

}  // namespace

std::unique_ptr<Communicator> make_device_routed_communicator(std::shared_ptr<Communicator> host,
                                                              std::unique_ptr<Communicator> device) {
  return std::make_unique<DeviceRoutedCommunicator>(std::move(host), std::move(device));
}

}  // namespace mt::parallel
