#!/bin/bash
# Port of Megatron-DeepSpeed examples_deepspeed/MoE/ds_pretrain_gpt_125M_MoE64.sh: GPT-3 Small
# (12 x 768) with 64 experts at every other layer.
# Below: the original's settings where they differ from its siblings' and its own flags; common.sh:
# the settings and flags they share, the DeepSpeed JSON, the launcher `mpirun -np $NUM_RANKS
# moetrain train`, data and outputs, SIZE=cpu for a CPU-size run.
set -euo pipefail
MODEL_SIZE=0.125
NUM_LAYERS=12
HIDDEN_SIZE=768
NUM_ATTN_HEADS=12
EP_SIZE=64
LR=4.5e-4
MIN_LR=4.5e-06
. "$(dirname "$0")/common.sh"  # the settings all the scripts share, then SIZE=cpu
if [ "$SIZE" = cpu ]; then EP_SIZE=$(cpu_experts "$EP_SIZE"); fi
NAME="gpt-${MODEL_SIZE}B-MoE${EP_SIZE}-${SIZE}"
derive_run_values

run_moetrain_train $(shared_megatron_options) $(moe_options) \
  --num-layers ${NUM_LAYERS} --train-iters ${TRAIN_ITERS} \
  $(deepspeed_options ds_config_gpt_TEMPLATE.json 0 true)
