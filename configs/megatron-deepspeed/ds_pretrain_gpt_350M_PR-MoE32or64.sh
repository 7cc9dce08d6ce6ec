#!/bin/bash
# Port of Megatron-DeepSpeed examples_deepspeed/MoE/ds_pretrain_gpt_350M_PR-MoE32or64.sh: GPT-3 Medium
# (24 x 1024) as PR-MoE: residual MoE with a pyramid of 32 experts (10 layers) and 64 (2 last).
# The original's settings below and its flags (common.sh: the flags all these scripts share, the
# DeepSpeed JSON, the launcher `mpirun -np $NUM_RANKS moetrain train`, data and outputs, SIZE=cpu for
# a CPU-size run).
set -euo pipefail
SEQ_LEN=2048
MODEL_SIZE=0.35
NUM_LAYERS=24
HIDDEN_SIZE=1024
NUM_ATTN_HEADS=16
GLOBAL_BATCH_SIZE=256
TRAIN_TOKENS=300000000000
EXIT_DURATION=30000000
WARMUP_TOKENS=375000000
LR_DECAY_TOKENS=300000000000
BATCH_SIZE=4
MP_SIZE=1
PP_SIZE=1
EP_SIZE="32 32 32 32 32 32 32 32 32 32 64 64"
LR=3.0e-4
MIN_LR=1.0e-06
MLC=0.01
MOE_TRAIN_CAP_FACTOR=1.0
MOE_EVAL_CAP_FACTOR=1.0
MOE_MIN_CAP=4
MOE_DROP_TOKEN="true"
CL_ENABLED="false"
CL_START_SEQLEN=80
CL_TOKENS=60000000000
LOG_INTERVAL=10
EVAL_ITERS=10
EVAL_INTERVAL=100
SAVE_INTERVAL=10000
INIT_STD=0.014
ACTIVATION_CHECKPOINT="true"
. "$(dirname "$0")/common.sh"
if [ "$SIZE" = cpu ]; then EP_SIZE="2 4"; CL_TOKENS=$CL_TOKENS_CPU; fi  # 2 MoE layers of 4: the pyramid's ends, 32 / 16 and 64 / 16
EP_PARALLEL_SIZE=$(ep_parallel_size "$EP_SIZE")
NAME="gpt-${MODEL_SIZE}B-PR-MoE-${SIZE}"
derive_run_values

run_moetrain_train $(shared_megatron_options) $(moe_options) --mlp-type residual \
  --num-layers ${NUM_LAYERS} --train-iters ${TRAIN_ITERS} --load ${CHECKPOINT_PATH} --save ${CHECKPOINT_PATH} \
  $(deepspeed_options ds_config_gpt_TEMPLATE.json 0 true)
