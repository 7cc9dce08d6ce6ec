// Tensor: a shape, a dtype and a window on shared, refcounted storage.
//
// Tensors are always contiguous (row-major). Views share storage and cover a contiguous range
// of it: reshape (any shape with the same element count), narrow/select along the leading
// dimension. This keeps every kernel a loop over plain arrays, and makes the flat parameter and
// gradient buffers of the registry trivial (each parameter is a view on one range).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "runtime/allocator.h"
#include "runtime/device.h"
#include "runtime/dtype.h"
#include "runtime/error.h"

namespace mt {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "[2,3,4]"
int64_t shape_numel(const Shape& s);

// One allocation; freed through its allocator when the last tensor viewing it goes away.
class Storage {
 public:
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
};

class Tensor {
 public:
  Tensor() = default;  // undefined tensor (defined() == false)

  // Factories. Memory from allocator_for(device). empty() leaves contents unset.
  static Tensor empty(const Shape& shape, DType dtype, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype, Device device = Device::cpu());
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);
  static Tensor scalar(double value, DType dtype, Device device = Device::cpu()) {
    return full({}, value, dtype, device);
  }

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t dim() const { return int64_t(shape_.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return numel_; }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device() : Device::cpu(); }
  size_t nbytes() const { return size_t(numel_) * dtype_size(dtype_); }
  std::string str() const;  // "f32[2,3]" (or "undefined"), for error messages

  void* raw() const;            // the memory, for kernels (host code may not touch device memory: emulated_cuda.h)
  const void* address() const;  // where it starts, for comparing and offsets only (never dereferenced)
  template <class T>
  T* data() const {
    MT_CHECK(dtype_of<T>::value == dtype_, "tensor ", str(), " accessed as ", dtype_name(dtype_of<T>::value));
    return static_cast<T*>(raw());
  }

  // Views (share storage).
  Tensor reshape(const Shape& shape) const;            // one entry may be -1
  Tensor narrow(int64_t start, int64_t length) const;  // rows [start, start+length) of dim 0
  Tensor select(int64_t index) const;                  // row `index` of dim 0, one dim less
  Tensor flatten_to_2d() const;                        // [..., C] -> [N, C]
  bool same_storage(const Tensor& other) const { return storage_ == other.storage_; }
  // True when the two tensors share storage and their byte ranges intersect.
  bool overlaps(const Tensor& other) const;

  // Copies and conversions (through the backend of the tensor's device).
  Tensor clone() const;
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;
  void copy_from(const Tensor& src);  // same numel; converts dtype
  void fill_(double value);
  void zero_() { fill_(0.0); }

  // Host-side reads for tests and small scalars (copies from device if needed).
  double item() const;  // numel must be 1
  std::vector<double> to_double_vector() const;

 private:
  Tensor(std::shared_ptr<Storage> storage, int64_t offset, Shape shape, DType dtype);
  std::shared_ptr<Storage> storage_;
  int64_t offset_ = 0;  // in elements
  Shape shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::F32;
};

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  MT_CHECK(int64_t(values.size()) == shape_numel(shape), "from_vector: ", values.size(), " values do not fill shape ",
           shape_str(shape));
  Tensor t = empty(shape, dtype_of<T>::value);
  std::copy(values.begin(), values.end(), t.data<T>());
  return t;
}

}  // namespace mt
