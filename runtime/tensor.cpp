#include "runtime/tensor.h"

#include <cstring>

#include "runtime/backend.h"
#include "runtime/emulated_cuda.h"
#include "runtime/kernel_profile.h"

namespace mt {

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(s[i]);
  }
  return out + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    MT_CHECK(d >= 0, "negative dimension in shape ", shape_str(s));
    MT_CHECK(!__builtin_mul_overflow(n, d, &n), "shape ", shape_str(s), " has more elements than fit in 64 bits");
  }
  return n;
}

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  data_ = allocator_for(device.type).allocate(bytes);
}

Storage::~Storage() {
  allocator_for(device_.type).deallocate(data_, bytes_);
}

Tensor::Tensor(std::shared_ptr<Storage> storage, int64_t offset, Shape shape, DType dtype)
    : storage_(std::move(storage)), offset_(offset), shape_(std::move(shape)), dtype_(dtype) {
  numel_ = shape_numel(shape_);
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  size_t bytes = size_t(shape_numel(shape)) * dtype_size(dtype);
  return Tensor(std::make_shared<Storage>(bytes, device), 0, shape, dtype);
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(0.0);
  return t;
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}

int64_t Tensor::size(int64_t d) const {
  int64_t nd = dim();
  MT_CHECK(d >= -nd && d < nd, "dimension ", d, " out of range for tensor ", str());
  return shape_[d < 0 ? d + nd : d];
}

std::string Tensor::str() const {
  if (!defined()) return "undefined";
  return std::string(dtype_name(dtype_)) + shape_str(shape_);
}

void* Tensor::raw() const {
  MT_CHECK(defined(), "access to an undefined tensor");
  if (!storage_->device().is_cpu()) check_host_access(storage_->device());
  return static_cast<char*>(storage_->data()) + offset_ * int64_t(dtype_size(dtype_));
}

const void* Tensor::address() const {
  MT_CHECK(defined(), "address of an undefined tensor");
  return static_cast<const char*>(storage_->data()) + offset_ * int64_t(dtype_size(dtype_));
}

Tensor Tensor::reshape(const Shape& shape) const {
  Shape out = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      MT_CHECK(infer < 0, "reshape of ", str(), " to ", shape_str(shape), ": more than one -1");
      infer = int64_t(i);
    } else {
      known *= out[i];
    }
  }
  if (infer >= 0) {
    MT_CHECK(known > 0 && numel_ % known == 0, "reshape of ", str(), " to ", shape_str(shape),
             ": element count does not divide");
    out[infer] = numel_ / known;
  }
  MT_CHECK(shape_numel(out) == numel_, "reshape of ", str(), " to ", shape_str(shape), ": element count differs");
  return Tensor(storage_, offset_, out, dtype_);
}

Tensor Tensor::narrow(int64_t start, int64_t length) const {
  MT_CHECK(dim() >= 1, "narrow of a 0-d tensor");
  MT_CHECK(start >= 0 && length >= 0 && start + length <= shape_[0], "narrow(", start, ", ", length,
           ") out of range for tensor ", str());
  Shape out = shape_;
  out[0] = length;
  int64_t row = shape_[0] ? numel_ / shape_[0] : 0;
  return Tensor(storage_, offset_ + start * row, out, dtype_);
}

Tensor Tensor::select(int64_t index) const {
  MT_CHECK(dim() >= 1, "select of a 0-d tensor");
  MT_CHECK(index >= 0 && index < shape_[0], "select(", index, ") out of range for tensor ", str());
  Shape out(shape_.begin() + 1, shape_.end());
  return Tensor(storage_, offset_ + index * shape_numel(out), out, dtype_);
}

Tensor Tensor::flatten_to_2d() const {
  MT_CHECK(dim() >= 1, "flatten_to_2d of a 0-d tensor");
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < shape_.size(); ++i) rows *= shape_[i];
  return Tensor(storage_, offset_, {rows, shape_.back()}, dtype_);
}

bool Tensor::overlaps(const Tensor& other) const {
  if (!defined() || !other.defined() || storage_ != other.storage_ || nbytes() == 0 || other.nbytes() == 0)
    return false;
  const char* a = static_cast<const char*>(address());
  const char* b = static_cast<const char*>(other.address());
  return a < b + other.nbytes() && b < a + nbytes();
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_, device());
  t.copy_from(*this);
  return t;
}

Tensor Tensor::to(DType dtype) const {
  Tensor t = empty(shape_, dtype, device());
  t.copy_from(*this);
  return t;
}

Tensor Tensor::to(Device device) const {
  Tensor t = empty(shape_, dtype_, device);
  t.copy_from(*this);
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  MT_CHECK(src.numel() == numel_, "copy_from: ", src.str(), " into ", str(), ": element counts differ");
  DeviceAccessScope kernel;
  kernel_profile::ScopedTimer timer(
      "copy", kernel_profile::enabled() ? std::string(dtype_name(src.dtype())) + "->" + dtype_name(dtype()) : "");
  if (src.device() == device() || src.device().is_cpu()) {
    backend_for(device()).copy(src, *this);
  } else {
    backend_for(src.device()).copy(src, *this);
  }
}

void Tensor::fill_(double value) {
  DeviceAccessScope kernel;
  kernel_profile::ScopedTimer timer("fill");
  backend_for(device()).fill(*this, value);
}

std::vector<double> Tensor::to_double_vector() const {
  Tensor host = (device().is_cpu() ? *this : to(Device::cpu())).to(DType::F64);
  const double* p = host.data<double>();
  return std::vector<double>(p, p + numel_);
}

double Tensor::item() const {
  MT_CHECK(numel_ == 1, "item() of tensor ", str(), ": needs exactly one element");
  return to_double_vector()[0];
}

}  // namespace mt
