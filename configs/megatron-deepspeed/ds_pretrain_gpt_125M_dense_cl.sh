#!/bin/bash
# Port of Megatron-DeepSpeed examples_deepspeed/MoE/ds_pretrain_gpt_125M_dense_cl.sh: dense GPT-3
# Small with DeepSpeed's sequence-length curriculum (72 -> 2048 tokens over the first 60B tokens),
# trained by samples (--train-samples), with --zero-stage 0 and optimizer-state logging. Below: the
# original's settings where they differ from its siblings' and its own flags; common.sh: the shared
# settings and flags, the DeepSpeed JSON, the launcher, data and outputs, SIZE=cpu.
set -euo pipefail
MODEL_SIZE=0.125
NUM_LAYERS=12
HIDDEN_SIZE=768
NUM_ATTN_HEADS=12
MIN_LR=6.0e-5
GLOBAL_BATCH_SIZE=2048
LR=2.4e-3
LR_DECAY_TOKENS=260000000000
BATCH_SIZE=16
ZERO_STAGE=0
CL_ENABLED="true"
CL_START_SEQLEN=72
SAVE_INTERVAL=1000
INIT_STD=0.02
LOG_OPTIMIZER_STATE="true"
. "$(dirname "$0")/common.sh"  # the settings all the scripts share, then SIZE=cpu
NAME="gpt3-${MODEL_SIZE}B-dense-cl-${SIZE}"
derive_run_values
TRAIN_SAMPLES=$(( TRAIN_TOKENS * 3 / SEQ_LEN ))
options=""
[ "${LOG_OPTIMIZER_STATE}" = "true" ] && options="--log-optimizer-states-to-tensorboard"

run_moetrain_train $(shared_megatron_options) ${options} \
  --num-layers ${NUM_LAYERS} --train-samples ${TRAIN_SAMPLES} \
  $(deepspeed_options ds_config_gpt_TEMPLATE.json ${ZERO_STAGE} true) --zero-stage ${ZERO_STAGE}
