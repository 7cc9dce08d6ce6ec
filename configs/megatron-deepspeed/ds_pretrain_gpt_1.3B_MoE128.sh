#!/bin/bash
# Port of Megatron-DeepSpeed examples_deepspeed/MoE/ds_pretrain_gpt_1.3B_MoE128.sh: GPT-3 XL
# (24 x 2048) with 128 experts at every other layer.
# The original's settings below and its flags (common.sh: the flags all these scripts share, the
# DeepSpeed JSON, the launcher `mpirun -np $NUM_RANKS moetrain train`, data and outputs, SIZE=cpu for
# a CPU-size run).
set -euo pipefail
SEQ_LEN=2048
MODEL_SIZE=1.3
NUM_LAYERS=24
HIDDEN_SIZE=2048
NUM_ATTN_HEADS=16
GLOBAL_BATCH_SIZE=512
TRAIN_TOKENS=300000000000
EXIT_DURATION=30000000
WARMUP_TOKENS=375000000
LR_DECAY_TOKENS=300000000000
BATCH_SIZE=8
MP_SIZE=1
PP_SIZE=1
EP_SIZE=128
LR=1.2e-4
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
if [ "$SIZE" = cpu ]; then EP_SIZE=$(cpu_experts "$EP_SIZE"); CL_TOKENS=$CL_TOKENS_CPU; fi
EP_PARALLEL_SIZE=$(ep_parallel_size "$EP_SIZE")
NAME="gpt-${MODEL_SIZE}B-MoE${EP_SIZE}-${SIZE}"
derive_run_values

run_moetrain_train $(shared_megatron_options) $(moe_options) \
  --num-layers ${NUM_LAYERS} --train-iters ${TRAIN_ITERS} --load ${CHECKPOINT_PATH} --save ${CHECKPOINT_PATH} \
  $(deepspeed_options ds_config_gpt_TEMPLATE.json 0 true)
