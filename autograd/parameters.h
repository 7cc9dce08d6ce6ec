// The parameter registry: every trainable tensor by name, with the tags the rest of the system
// needs instead of hard-coded indices:
//   weight_decay   AdamW decays it (2-D weights) or not (biases, LayerNorm gains);
//   expert         it belongs to expert `expert` of MoE layer `layer` (reduced over the
//                  expert-data-parallel group, stored under its global id in checkpoints);
//   tp_split_dim   the dimension split across tensor-parallel ranks (-1: replicated), in
//   tp_blocks      equal blocks, each split over the ranks (3 for a fused q,k,v weight), so that
//                  the full tensor (what checkpoints store) is the one a single process holds.
//
// pack() lays all parameters of a group (dense or expert) out in one flat value buffer and one
// flat gradient buffer, and re-points every Variable's value and grad at its range (and pins them
// there: replacing a packed parameter's value or gradient is refused; copy into it instead).
// All-reduce, clipping, the optimizer and checkpoints then work on two flat buffers per group.
// Packed with GradStorage::PerParameter (ZeRO stage 2) there is no flat gradient buffer: each
// parameter's gradient is its own tensor, made by the backward and released once reduced into
// this rank's shard (train/zero_gradients.h).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "autograd/variable.h"

namespace mt {

struct ExpertTag {
  int layer = 0;   // MoE layer index (0-based over the model's layers)
  int expert = 0;  // global expert id within that layer
};

struct ParamTags {
  bool weight_decay = true;
  std::optional<ExpertTag> expert;
  int tp_split_dim = -1;
  int tp_blocks = 1;

  // ParamTags{} decays; ParamTags::no_decay() for biases and LayerNorm parameters; chain the rest:
  // ParamTags{}.set_expert(3, 5).set_tp_split(0).
  static ParamTags no_decay() {
    ParamTags t;
    t.weight_decay = false;
    return t;
  }
  ParamTags& set_expert(int layer, int expert_id) {
    expert = ExpertTag{layer, expert_id};
    return *this;
  }
  ParamTags& set_tp_split(int dim, int blocks = 1) {
    tp_split_dim = dim;
    tp_blocks = blocks;
    return *this;
  }
};

enum class ParamGroup { Dense = 0, Expert = 1 };
enum class GradStorage { Flat, PerParameter };
constexpr int kNumParamGroups = 2;
const char* param_group_name(ParamGroup g);

struct Parameter {
  std::string name;
  Variable var;
  ParamTags tags;
  int64_t offset = -1;  // start in its group's flat buffers once packed
  ParamGroup group() const { return tags.expert ? ParamGroup::Expert : ParamGroup::Dense; }
};

class ParameterRegistry {
 public:
  // Registers `init` (taken as the value) under a unique name; returns the Variable the model keeps.
  Variable add(const std::string& name, Tensor init, ParamTags tags = {});
  const std::vector<Parameter>& all() const { return params_; }
  const Parameter& get(const std::string& name) const;  // error names the closest registered name
  bool contains(const std::string& name) const;

  // Flat layout: offsets are aligned to kAlign elements; gaps are zero.
  static constexpr int64_t kAlign = 16;
  // frozen: no gradient buffers, and the parameters stop requiring gradients (a model that is
  // only evaluated, such as a distillation teacher, costs its weights and nothing more).
  // device: where the flat buffers live (default: where the parameters were created); a model
  // built on the host moves to a GPU this way, once.
  void pack(bool frozen = false, std::optional<Device> device = std::nullopt,
            GradStorage grad_storage = GradStorage::Flat);
  bool packed() const { return packed_; }
  GradStorage grad_storage() const { return grad_storage_; }
  const Tensor& flat_values(ParamGroup g) const;
  const Tensor& flat_grads(ParamGroup g) const;  // undefined when frozen or PerParameter; unwritten ones zeroed
  void zero_grads();  // flat gradients read as zeros until written (see flat_grads); per-parameter ones released

  // Mixed precision: a copy of the flat value buffers rounded to 16 bits (bf16 or f16), for the
  // GEMMs (autograd/autocast.h), held in ops::rounded_operand_dtype (the 16-bit dtype, or f32
  // where the GEMMs widen it anyway). Refresh it after every change of the values (an optimizer step).
  void refresh_half_copy(DType dtype);
  // The copy's view of a packed parameter's value (or of a view inside one); nullopt when
  // `value` does not lie in a flat value buffer or no copy rounded to `dtype` exists.
  std::optional<Tensor> half_copy_of(const Tensor& value, DType dtype) const;

  int64_t numel() const;              // elements of all parameters (no padding)
  int64_t numel(ParamGroup g) const;  // elements of one group (no padding)

 private:
  std::vector<Parameter> params_;
  bool packed_ = false;
  GradStorage grad_storage_ = GradStorage::Flat;
  Tensor values_[kNumParamGroups], grads_[kNumParamGroups], half_values_[kNumParamGroups];
  DType half_rounding_[kNumParamGroups] = {};  // the 16-bit dtype half_values_[g] was rounded to
};

}  // namespace mt
