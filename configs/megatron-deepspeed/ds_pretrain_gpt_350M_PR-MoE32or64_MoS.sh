#!/bin/bash
# Port of Megatron-DeepSpeed examples_deepspeed/MoE/ds_pretrain_gpt_350M_PR-MoE32or64_MoS.sh: MoS, a
# 21-layer PR-MoE student (pyramid 32 x 8, 64 x 2) distilled from the 24-layer PR-MoE teacher that
# ds_pretrain_gpt_350M_PR-MoE32or64.sh trains (its checkpoint: CHECKPOINT_PATH_TEACHER). The
# original's settings and flags; common.sh: the shared flags, the DeepSpeed JSON, the launcher
# `mpirun -np $NUM_RANKS moetrain train`, data and outputs, SIZE=cpu for a CPU-size run.
# (The original's sed leaves ZERO_STAGE and PRESCALE_GRAD in its JSON, which no JSON reader
# accepts, and points the teacher at a 1.3B checkpoint while its *_teacher flags say 350M: the
# port fills stage 0 / prescale true and uses the 350M PR-MoE teacher.)
set -euo pipefail
SEQ_LEN=2048
MODEL_SIZE=0.35
NUM_LAYERS=24
STUDENT_LAYERS=21
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
EP_SIZE="32 32 32 32 32 32 32 32 64 64"
EP_SIZE_TEACHER="32 32 32 32 32 32 32 32 32 32 64 64"
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
KD_BETA_CE=1
. "$(dirname "$0")/common.sh"
if [ "$SIZE" = cpu ]; then  # a 3-layer student (1 MoE layer) of the 4-layer CPU-size teacher
  STUDENT_LAYERS=3; EP_SIZE="4"; EP_SIZE_TEACHER="2 4"; CL_TOKENS=$CL_TOKENS_CPU
fi
EP_PARALLEL_SIZE=$(ep_parallel_size "$EP_SIZE $EP_SIZE_TEACHER")
NAME="gpt-${MODEL_SIZE}B-PR-MoE-MoS-${SIZE}"
derive_run_values
CHECKPOINT_PATH_TEACHER=${CHECKPOINT_PATH_TEACHER:-${OUTPUT_BASEPATH}/checkpoint/gpt-${MODEL_SIZE}B-PR-MoE-${SIZE}}

run_moetrain_train $(shared_megatron_options) $(moe_options) --mlp-type residual \
  --num-layers ${STUDENT_LAYERS} --train-iters ${TRAIN_ITERS} --load ${CHECKPOINT_PATH} --save ${CHECKPOINT_PATH} \
  --mos --kd-beta-ce ${KD_BETA_CE} --num-layers-teacher ${NUM_LAYERS} --num-experts-teacher ${EP_SIZE_TEACHER} \
  --hidden-size-teacher ${HIDDEN_SIZE} --num-attention-heads-teacher ${NUM_ATTN_HEADS} \
  --load-teacher ${CHECKPOINT_PATH_TEACHER} \
  $(deepspeed_options ds_config_gpt_TEMPLATE.json 0 true)
