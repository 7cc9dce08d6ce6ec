#include "autograd/parameters.h"

#include <algorithm>

#include "runtime/ops.h"
#include "runtime/text_util.h"

namespace mt {

const char* param_group_name(ParamGroup g) {
  return g == ParamGroup::Dense ? "dense" : "expert";
}

Variable ParameterRegistry::add(const std::string& name, Tensor init, ParamTags tags) {
  MT_CHECK(!packed_, "parameter registry: cannot add '", name, "' after pack()");
  MT_CHECK(!contains(name), "parameter registry: the name '", name, "' is registered twice");
  MT_CHECK(init.defined() && is_floating(init.dtype()), "parameter registry: '", name,
           "' needs a floating-point tensor, got ", init.str());
  MT_CHECK(tags.tp_split_dim < int(init.dim()), "parameter registry: '", name, "' tp_split_dim ", tags.tp_split_dim,
           " out of range for ", init.str());
  Variable v(std::move(init), true, name);
  params_.push_back({name, v, tags, -1});
  return v;
}

bool ParameterRegistry::contains(const std::string& name) const {
  return std::any_of(params_.begin(), params_.end(), [&](const Parameter& p) { return p.name == name; });
}

const Parameter& ParameterRegistry::get(const std::string& name) const {
  std::vector<std::string> names;
  for (const Parameter& p : params_) {
    if (p.name == name) return p;
    names.push_back(p.name);
  }
  std::string best = closest_name(name, names);
  throw Error("no parameter named '" + name + "'" + (best.empty() ? "" : "; did you mean '" + best + "'?"));
}

void ParameterRegistry::pack(bool frozen, std::optional<Device> device, GradStorage grad_storage) {
  MT_CHECK(!packed_, "parameter registry: pack() called twice");
  grad_storage_ = grad_storage;
  bool flat_grads = !frozen && grad_storage == GradStorage::Flat;
  for (int gi = 0; gi < kNumParamGroups; ++gi) {
    ParamGroup g = ParamGroup(gi);
    int64_t total = 0;
    const Parameter* first = nullptr;
    for (Parameter& p : params_) {
      if (p.group() != g) continue;
      if (!first) first = &p;
      MT_CHECK(p.var.dtype() == first->var.dtype() && p.var.device() == first->var.device(), "parameter registry: '",
               p.name, "' is ", p.var.value().str(), " on ", p.var.device().str(), " but '", first->name,
               "' in the same group is ", first->var.value().str());
      p.offset = total;
      total += (p.var.value().numel() + kAlign - 1) / kAlign * kAlign;
    }
    if (!first) continue;
    Device where = device ? *device : first->var.device();
    values_[gi] = Tensor::zeros({total}, first->var.dtype(), where);
    if (flat_grads) grads_[gi] = Tensor::zeros({total}, first->var.dtype(), where);
    for (Parameter& p : params_) {
      if (p.group() != g) continue;
      const Tensor& old = p.var.value();
      Tensor value = values_[gi].narrow(p.offset, old.numel()).reshape(old.shape());
      value.copy_from(old);
      p.var.set_value(value);
      if (frozen) {
        p.var.set_grad(Tensor());
        p.var.set_requires_grad(false);
      } else if (flat_grads) {
        Tensor grad = grads_[gi].narrow(p.offset, old.numel()).reshape(old.shape());
        if (p.var.grad().defined()) grad.copy_from(p.var.grad());  // keep what was accumulated
        p.var.set_grad(grad);
      } else if (p.var.grad().defined()) {
        p.var.set_grad(p.var.grad().to(where));
      }
      p.var.pin(flat_grads);  // from now on the value (and a flat gradient) stay views on the flat buffers
    }
  }
  packed_ = true;
}

const Tensor& ParameterRegistry::flat_values(ParamGroup g) const {
  MT_CHECK(packed_, "parameter registry: flat buffers exist only after pack()");
  return values_[int(g)];
}

const Tensor& ParameterRegistry::flat_grads(ParamGroup g) const {
  MT_CHECK(packed_, "parameter registry: flat buffers exist only after pack()");
  if (grads_[int(g)].defined())  // gradients nothing wrote since zero_grads(): zeros now (grad() fills them)
    for (const Parameter& p : params_)
      if (p.group() == g) p.var.grad();
  return grads_[int(g)];
}

void ParameterRegistry::zero_grads() {
  if (packed_ && grad_storage_ == GradStorage::Flat) {
    // not filled: each gradient's first contribution writes it, and flat_grads() zero-fills those
    // that got none (an expert without tokens); the gaps between them stay the zeros of pack()
    for (Parameter& p : params_)
      if (grads_[int(p.group())].defined()) p.var.grad_slot().mark_unwritten();
    return;
  }
  for (Parameter& p : params_)
    if (p.var.grad().defined()) p.var.clear_grad();
}

void ParameterRegistry::refresh_half_copy(DType dtype) {
  MT_CHECK(packed_ && is_half_precision(dtype), "parameter registry: a bf16/f16 copy of packed parameters only; got ",
           dtype_name(dtype), packed_ ? "" : " before pack()");
  for (int g = 0; g < kNumParamGroups; ++g) {
    if (!values_[g].defined()) continue;
    DType held = ops::rounded_operand_dtype(dtype, values_[g].device());
    if (!half_values_[g].defined() || half_values_[g].dtype() != held)
      half_values_[g] = Tensor::empty(values_[g].shape(), held, values_[g].device());
    ops::round_operand_into(values_[g], dtype, half_values_[g]);
    half_rounding_[g] = dtype;
  }
}

std::optional<Tensor> ParameterRegistry::half_copy_of(const Tensor& value, DType dtype) const {
  for (int g = 0; g < kNumParamGroups; ++g) {
    const Tensor& flat = values_[g];
    if (!half_values_[g].defined() || half_rounding_[g] != dtype || !value.same_storage(flat) ||
        value.dtype() != flat.dtype())
      continue;
    int64_t offset = (static_cast<const char*>(value.address()) - static_cast<const char*>(flat.address())) /
                     int64_t(dtype_size(flat.dtype()));
    if (offset < 0 || offset + value.numel() > flat.numel()) continue;
    return half_values_[g].narrow(offset, value.numel()).reshape(value.shape());
  }
  return std::nullopt;
}

int64_t ParameterRegistry::numel() const {
  int64_t n = 0;
  for (const Parameter& p : params_) n += p.var.value().numel();
  return n;
}

int64_t ParameterRegistry::numel(ParamGroup g) const {
  int64_t n = 0;
  for (const Parameter& p : params_)
    if (p.group() == g) n += p.var.value().numel();
  return n;
}

}  // namespace mt
