// Sparse upcycling (Komatsuzaki et al., 2023; Megatron-Core's moe_use_upcycling): an MoE model
// started from a dense checkpoint. Every parameter the two models share by name is copied; in
// each MoE layer every expert (and a residual MoE's dense MLP) is a copy of the dense MLP of its
// layer ("layers.<l>.mlp.dense_h_to_4h.weight" -> "layers.<l>.mlp.experts.<e>.dense_h_to_4h.weight");
// the gate (and residual MoE's coefficient) keep the initial values training gives them. With
// top-k >= 2 and no dropping the upcycled model computes the dense model's function: the
// renormalised weights of k copies of one MLP sum to 1. The optimizer state starts fresh.
#pragma once

#include <string>

#include "autograd/parameters.h"
#include "train/checkpoint_layout.h"
#include "train/config.h"

namespace mt::train {

// Refuses MoE configurations whose experts cannot be copies of the dense MLP (another width, a
// shared expert), naming the key.
void check_upcycling_config(const TrainConfig& moe);

// Fills `params` (an MoE model built from the MoE configuration, this rank's part under `layout`)
// from the dense checkpoint folder `dense_dir`. Returns how many parameter tensors were copied
// and how many kept their initial values (the gates, the coefficients).
struct UpcycleCounts {
  int64_t copied = 0, initialised = 0;
};
UpcycleCounts upcycle_from_dense(const std::string& dense_dir, ParameterRegistry& params,
                                 const CheckpointLayout& layout = {});

}  // namespace mt::train
