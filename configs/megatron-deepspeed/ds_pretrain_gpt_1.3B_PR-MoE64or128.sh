#!/bin/bash
# Port of Megatron-DeepSpeed examples_deepspeed/MoE/ds_pretrain_gpt_1.3B_PR-MoE64or128.sh: GPT-3 XL
# (24 x 2048) as PR-MoE: residual MoE, a pyramid of 64 experts (10 layers) and 128 (2 last), with
# DeepSpeed ZeRO stage 2 (its Zero2 JSON): the gradients and AdamW's state partitioned over the
# data-parallel ranks (docs/zero.md).
# Below: the original's settings where they differ from its siblings' and its own flags; common.sh:
# the settings and flags they share, the DeepSpeed JSON, the launcher `mpirun -np $NUM_RANKS
# moetrain train`, data and outputs, SIZE=cpu for a CPU-size run.
set -euo pipefail
MODEL_SIZE=1.3
NUM_LAYERS=24
HIDDEN_SIZE=2048
NUM_ATTN_HEADS=16
GLOBAL_BATCH_SIZE=512
BATCH_SIZE=8
EP_SIZE="64 64 64 64 64 64 64 64 64 64 128 128"
LR=1.2e-4
MIN_LR=1.0e-6
. "$(dirname "$0")/common.sh"  # the settings all the scripts share, then SIZE=cpu
if [ "$SIZE" = cpu ]; then EP_SIZE="4 8"; fi  # 2 MoE layers: 64 / 16 and 128 / 16
NAME="gpt-${MODEL_SIZE}B-PR-MoE-${SIZE}"
derive_run_values

run_moetrain_train $(shared_megatron_options) $(moe_options) --mlp-type residual \
  --num-layers ${NUM_LAYERS} --train-iters ${TRAIN_ITERS} \
  $(deepspeed_options ds_config_gpt_Zero2_TEMPLATE.json 2 false)
