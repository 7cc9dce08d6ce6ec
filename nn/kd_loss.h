// The knowledge-distillation term of Mixture-of-Students (DeepSpeed-MoE's MoS, deepspeed/moe
// in Megatron-DeepSpeed's pretrain_gpt.py; docs/math/kd.md):
//   kd = beta * T^2 * sum_n w_n KL(p_n || q_n),   p = softmax(teacher / T), q = softmax(student / T)
// over the vocabulary, with w_n = 1/N for N tokens (DeepSpeed: every position counts; its
// KLDivLoss 'batchmean' divided by micro-batch x seq_length is this mean) or, with a loss mask,
// w_n = m_n / sum m. student [..., V] is differentiated; teacher [..., V] is a constant.
// Per row, KL = sum_v p_v (b_v - a_v) / T - lse(b/T) + lse(a/T), and
//   d kd / d a_v = beta * T^2 * w_n * (q_v - p_v) / T.
// Under tensor parallelism both logits hold this rank's vocabulary columns: the log-sum-exps and
// the cross term are all-reduced over the group, so the softmaxes cover the whole vocabulary
// (DeepSpeed took them over the local shard); the backward needs no communication.
#pragma once

#include "autograd/variable.h"
#include "parallel/communicator.h"

namespace mt::nn {

Variable kd_loss(const Variable& student, const Tensor& teacher, double temperature, double beta,
                 const Tensor& loss_mask = {}, parallel::Communicator* tensor_group = nullptr);

}  // namespace mt::nn
