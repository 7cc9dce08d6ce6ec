// Argument checking shared by all ops: collects the arguments so that a failed requirement
// reports "op: what was expected; got name dtype[shape] on device, ...".
#pragma once

#include <string>
#include <vector>

#include "runtime/tensor.h"

namespace mt {

class OpCheck {
 public:
  explicit OpCheck(const char* op) : op_(op) {}
  OpCheck& arg(const char* name, const Tensor& t) {
    args_.push_back({name, &t, false, false});
    return *this;
  }
  OpCheck& arg(const char* name, const Tensor* t) {  // optional argument
    if (t) args_.push_back({name, t, false, false});
    return *this;
  }
  OpCheck& index_arg(const char* name, const Tensor& t) {  // token ids, targets: i32 or i64
    args_.push_back({name, &t, true, false});
    return *this;
  }
  // An output that the kernel writes while still reading other arguments at other indices: it
  // must not overlap any input (checked by same_float_dtype_and_device).
  OpCheck& out(const char* name, const Tensor* t) {
    if (t) args_.push_back({name, t, false, true});
    return *this;
  }
  OpCheck& out(const char* name, const Tensor& t) { return out(name, &t); }
  // Throws mt::Error with the expectation and every argument when cond is false.
  void require(bool cond, const std::string& expectation) const;
  // All arguments defined and on one device; index arguments i32/i64; all others of one dtype,
  // f32 or f64.
  const OpCheck& same_float_dtype_and_device() const;
  [[noreturn]] void fail(const std::string& expectation) const;

 private:
  const char* op_;
  struct Arg {
    const char* name;
    const Tensor* tensor;
    bool index;
    bool output = false;
  };
  std::vector<Arg> args_;
};

}  // namespace mt
