#!/bin/bash
# Port of Megatron-DeepSpeed examples_deepspeed/MoE/ds_pretrain_gpt_350M_PR-MoE32or64_MoS.sh: MoS, a
# 21-layer PR-MoE student (pyramid 32 x 8, 64 x 2) distilled from the 24-layer PR-MoE teacher that
# ds_pretrain_gpt_350M_PR-MoE32or64.sh trains (its checkpoint: CHECKPOINT_PATH_TEACHER). Below: the
# original's settings where they differ from its siblings' and its own flags; common.sh: the shared
# settings and flags, the DeepSpeed JSON, the launcher, data and outputs, SIZE=cpu.
# (The original's sed leaves ZERO_STAGE and PRESCALE_GRAD in its JSON, which no JSON reader
# accepts, and points the teacher at a 1.3B checkpoint while its *_teacher flags say 350M: the
# port fills stage 0 / prescale true and uses the 350M PR-MoE teacher.)
set -euo pipefail
MODEL_SIZE=0.35
NUM_LAYERS=24
STUDENT_LAYERS=21
HIDDEN_SIZE=1024
NUM_ATTN_HEADS=16
EP_SIZE="32 32 32 32 32 32 32 32 64 64"
EP_SIZE_TEACHER="32 32 32 32 32 32 32 32 32 32 64 64"
LR=3.0e-4
MIN_LR=1.0e-06
KD_BETA_CE=1
. "$(dirname "$0")/common.sh"  # the settings all the scripts share, then SIZE=cpu
if [ "$SIZE" = cpu ]; then  # a 3-layer student (1 MoE layer) of the 4-layer CPU-size teacher
  STUDENT_LAYERS=3; EP_SIZE="4"; EP_SIZE_TEACHER="2 4"
fi
NAME="gpt-${MODEL_SIZE}B-PR-MoE-MoS-${SIZE}"
derive_run_values
CHECKPOINT_PATH_TEACHER=${CHECKPOINT_PATH_TEACHER:-${OUTPUT_BASEPATH}/checkpoint/gpt-${MODEL_SIZE}B-PR-MoE-${SIZE}}

run_moetrain_train $(shared_megatron_options) $(moe_options) --mlp-type residual \
  --num-layers ${STUDENT_LAYERS} --train-iters ${TRAIN_ITERS} \
  --mos --kd-beta-ce ${KD_BETA_CE} --num-layers-teacher ${NUM_LAYERS} --num-experts-teacher ${EP_SIZE_TEACHER} \
  --hidden-size-teacher ${HIDDEN_SIZE} --num-attention-heads-teacher ${NUM_ATTN_HEADS} \
  --load-teacher ${CHECKPOINT_PATH_TEACHER} \
  $(deepspeed_options ds_config_gpt_TEMPLATE.json 0 true)
