#!/bin/bash
# Port of Megatron-DeepSpeed examples_deepspeed/MoE/ds_pretrain_gpt_350M_PR-MoE32or64.sh: GPT-3 Medium
# (24 x 1024) as PR-MoE: residual MoE with a pyramid of 32 experts (10 layers) and 64 (2 last).
# Below: the original's settings where they differ from its siblings' and its own flags; common.sh:
# the settings and flags they share, the DeepSpeed JSON, the launcher `mpirun -np $NUM_RANKS
# moetrain train`, data and outputs, SIZE=cpu for a CPU-size run.
set -euo pipefail
MODEL_SIZE=0.35
NUM_LAYERS=24
HIDDEN_SIZE=1024
NUM_ATTN_HEADS=16
EP_SIZE="32 32 32 32 32 32 32 32 32 32 64 64"
LR=3.0e-4
MIN_LR=1.0e-06
. "$(dirname "$0")/common.sh"  # the settings all the scripts share, then SIZE=cpu
if [ "$SIZE" = cpu ]; then EP_SIZE="2 4"; fi  # 2 MoE layers of 4: the pyramid's ends, 32 / 16 and 64 / 16
NAME="gpt-${MODEL_SIZE}B-PR-MoE-${SIZE}"
derive_run_values

run_moetrain_train $(shared_megatron_options) $(moe_options) --mlp-type residual \
  --num-layers ${NUM_LAYERS} --train-iters ${TRAIN_ITERS} \
  $(deepspeed_options ds_config_gpt_TEMPLATE.json 0 true)
