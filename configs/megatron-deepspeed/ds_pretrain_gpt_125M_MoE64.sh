#!/bin/bash
# Port of Megatron-DeepSpeed examples_deepspeed/MoE/ds_pretrain_gpt_125M_MoE64.sh: GPT-3 Small
# (12 x 768) with 64 experts at every other layer.
# The original's settings below and its flags (common.sh: the flags all these scripts share, the
# DeepSpeed JSON, the launcher `mpirun -np $NUM_RANKS moetrain train`, data and outputs, SIZE=cpu for
# a CPU-size run).
set -euo pipefail
SEQ_LEN=2048
MODEL_SIZE=0.125
NUM_LAYERS=12
HIDDEN_SIZE=768
NUM_ATTN_HEADS=12
GLOBAL_BATCH_SIZE=256
TRAIN_TOKENS=300000000000
EXIT_DURATION=30000000
WARMUP_TOKENS=375000000
LR_DECAY_TOKENS=300000000000
BATCH_SIZE=4
MP_SIZE=1
PP_SIZE=1
EP_SIZE=64
LR=4.5e-4
MIN_LR=4.5e-06
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
