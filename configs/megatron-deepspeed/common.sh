# Shared by the ported launch scripts of this folder (sourced, not run). What differs from the
# originals (Megatron-DeepSpeed examples_deepspeed/MoE/*.sh) lives here, so each script keeps the
# original's settings and flags:
#   - the launcher: `mpirun -np $NUM_RANKS moetrain train` instead of `deepspeed pretrain_gpt.py`
#     (NUM_RANKS: the ranks to start, default 1; MOETRAIN: the program, default `moetrain` on PATH;
#     LAUNCHER: the whole launcher prefix when mpirun needs options, e.g. "mpirun -np 16 --hostfile h");
#   - the data: DATA_PATH, VOCAB_PATH, MERGE_PATH from the environment (defaults: the README's
#     data/tinyshakespeare_text_document and the bundled GPT-2 files);
#   - the outputs under OUTPUT_BASEPATH (default ./output): checkpoint/, tensorboard/, log/;
#   - SIZE=cpu: the same flags with CPU-size numbers (4 layers x 64, sequence 64, a few iterations,
#     expert counts scaled down), which `make test` runs; SIZE=full (default) keeps the originals'.
# The DeepSpeed JSON is filled from this folder's templates with the originals' sed substitutions.

# The settings every original script sets alike (a script sets its own first where it differs).
SEQ_LEN=${SEQ_LEN:-2048}
GLOBAL_BATCH_SIZE=${GLOBAL_BATCH_SIZE:-256}
TRAIN_TOKENS=${TRAIN_TOKENS:-300000000000}
EXIT_DURATION=${EXIT_DURATION:-30000000}
WARMUP_TOKENS=${WARMUP_TOKENS:-375000000}
LR_DECAY_TOKENS=${LR_DECAY_TOKENS:-300000000000}
BATCH_SIZE=${BATCH_SIZE:-4}
MP_SIZE=${MP_SIZE:-1}
PP_SIZE=${PP_SIZE:-1}
MLC=${MLC:-0.01}
MOE_TRAIN_CAP_FACTOR=${MOE_TRAIN_CAP_FACTOR:-1.0}
MOE_EVAL_CAP_FACTOR=${MOE_EVAL_CAP_FACTOR:-1.0}
MOE_MIN_CAP=${MOE_MIN_CAP:-4}
MOE_DROP_TOKEN=${MOE_DROP_TOKEN:-true}
CL_ENABLED=${CL_ENABLED:-false}
CL_START_SEQLEN=${CL_START_SEQLEN:-80}
CL_TOKENS=${CL_TOKENS:-60000000000}
LOG_INTERVAL=${LOG_INTERVAL:-10}
EVAL_ITERS=${EVAL_ITERS:-10}
EVAL_INTERVAL=${EVAL_INTERVAL:-100}
SAVE_INTERVAL=${SAVE_INTERVAL:-10000}
INIT_STD=${INIT_STD:-0.014}
ACTIVATION_CHECKPOINT=${ACTIVATION_CHECKPOINT:-true}

NUM_RANKS=${NUM_RANKS:-1}
MOETRAIN=${MOETRAIN:-moetrain}
SIZE=${SIZE:-full}
OUTPUT_BASEPATH=${OUTPUT_BASEPATH:-$(pwd)/output}
DATA_PATH=${DATA_PATH:-data/tinyshakespeare_text_document}
VOCAB_PATH=${VOCAB_PATH:-}
MERGE_PATH=${MERGE_PATH:-}
MD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# An expert count scaled to the CPU variant: 32 -> 2, 64 -> 4, 128 -> 8 (a list: each entry).
cpu_experts() {
  local out="" e
  for e in $1; do out="$out $(( e / 16 ))"; done
  echo "${out# }"
}

# SIZE=cpu: the model, batch and schedule shrunk; everything else as the original sets it.
if [ "$SIZE" = cpu ]; then
  SEQ_LEN=64
  NUM_LAYERS=4
  HIDDEN_SIZE=64
  NUM_ATTN_HEADS=4
  GLOBAL_BATCH_SIZE=8
  BATCH_SIZE=2
  TRAIN_TOKENS=$(( 6 * GLOBAL_BATCH_SIZE * SEQ_LEN ))  # 6 iterations
  WARMUP_TOKENS=$(( GLOBAL_BATCH_SIZE * SEQ_LEN ))
  LR_DECAY_TOKENS=$TRAIN_TOKENS
  LOG_INTERVAL=1
  EVAL_INTERVAL=3
  EVAL_ITERS=1
  SAVE_INTERVAL=3
  CL_START_SEQLEN=16
  CL_TOKENS=$(( 4 * GLOBAL_BATCH_SIZE * SEQ_LEN ))
fi

# The ranks sharing one copy of the experts: the original's EP size (a pyramid's smallest count),
# at most the ranks.
ep_parallel_size() {
  local ep="" e
  for e in $1; do [ -z "$ep" ] || [ "$e" -lt "$ep" ] && ep=$e; done
  if [ "$ep" -gt "$NUM_RANKS" ]; then echo "$NUM_RANKS"; else echo "$ep"; fi
}

# The DeepSpeed JSON of a template (arguments: template, output, then sed expressions).
fill_ds_config() {
  local template=$1 out=$2; shift 2
  local cmd="cat $MD_DIR/$template"
  for expr in "$@"; do cmd="$cmd | sed \"$expr\""; done
  eval "$cmd" > "$out"
}

# Runs moetrain train with the given flags through the launcher, the log beside it (as the
# originals: output/log/<name>.log), and the command echoed first.
run_moetrain_train() {
  mkdir -p "${OUTPUT_BASEPATH}/log"
  local launcher=${LAUNCHER:-}
  if [ -z "$launcher" ] && [ "$NUM_RANKS" -gt 1 ]; then launcher="mpirun -np $NUM_RANKS"; fi
  local files=""
  [ -n "$VOCAB_PATH" ] && files="$files --vocab-file $VOCAB_PATH"
  [ -n "$MERGE_PATH" ] && files="$files --merge-file $MERGE_PATH"
  echo "$launcher $MOETRAIN train $* $files"
  # shellcheck disable=SC2086
  $launcher "$MOETRAIN" train "$@" $files 2>&1 | tee "${OUTPUT_BASEPATH}/log/${NAME}.log"
  return "${PIPESTATUS[0]}"
}

# The flags every one of the ported scripts passes, as the originals write them (their
# megatron_options without the model depth, the run length, the checkpoints and the MoE flags).
shared_megatron_options() {
  echo "--override-opt_param-scheduler --adam-beta1 0.9 --adam-beta2 0.95 \
    --tensor-model-parallel-size ${MP_SIZE} --init-method-std ${INIT_STD} \
    --lr-decay-tokens ${LR_DECAY_TOKENS} --lr-warmup-tokens ${WARMUP_TOKENS} \
    --micro-batch-size ${BATCH_SIZE} --exit-duration-in-mins ${EXIT_DURATION} \
    --global-batch-size ${GLOBAL_BATCH_SIZE} --hidden-size ${HIDDEN_SIZE} \
    --num-attention-heads ${NUM_ATTN_HEADS} --seq-length ${SEQ_LEN} --max-position-embeddings ${SEQ_LEN} \
    --train-tokens ${TRAIN_TOKENS} --lr ${LR} --min-lr ${MIN_LR} --lr-decay-style cosine --split 98,2,0 \
    --log-interval ${LOG_INTERVAL} --eval-interval ${EVAL_INTERVAL} --eval-iters ${EVAL_ITERS} \
    --load ${CHECKPOINT_PATH} --save ${CHECKPOINT_PATH} \
    --save-interval ${SAVE_INTERVAL} --weight-decay 0.1 --clip-grad 1.0 --hysteresis 2 --num-workers 0 --fp16 \
    --tensorboard-queue-size 1 --log-timers-to-tensorboard --log-batch-size-to-tensorboard \
    --log-validation-ppl-to-tensorboard --tensorboard-dir ${TENSORBOARD_DIR} \
    --data-path ${DATA_PATH} --data-impl mmap"
}

# The MoE scripts' expert flags (EP_SIZE: one count or a pyramid list).
moe_options() {
  local options="--moe-expert-parallel-size ${EP_PARALLEL_SIZE} --num-experts ${EP_SIZE} --moe-loss-coeff ${MLC} \
    --moe-train-capacity-factor ${MOE_TRAIN_CAP_FACTOR} --moe-eval-capacity-factor ${MOE_EVAL_CAP_FACTOR} \
    --moe-min-capacity ${MOE_MIN_CAP} --create-moe-param-group"
  [ "${MOE_DROP_TOKEN}" = "false" ] && options="$options --disable-moe-token-dropping"
  echo "$options"
}

# The DeepSpeed flags with the JSON filled from TEMPLATE (ZERO_STAGE and PRESCALE_GRAD where the
# template has them) as the originals' sed lines fill it, plus activation checkpointing's two flags.
deepspeed_options() {
  local template=$1 zero=$2 prescale=$3
  local config_json="${OUTPUT_BASEPATH}/ds_config_gpt_${NAME}.json"
  fill_ds_config "$template" "$config_json" \
    "s/CONFIG_BATCH_SIZE/${GLOBAL_BATCH_SIZE}/" "s/CONFIG_MBSIZE/${BATCH_SIZE}/" "s/LOG_INTERVAL/${LOG_INTERVAL}/" \
    "s/ZERO_STAGE/${zero}/" "s/PRESCALE_GRAD/${prescale}/" "s/CONFIG_FP16_ENABLED/true/" \
    "s/CONFIG_BF16_ENABLED/false/" "s/CONFIG_CL_ENABLED/${CL_ENABLED}/" "s/CONFIG_CL_MIN/${CL_START_SEQLEN}/" \
    "s/CONFIG_CL_MAX/${SEQ_LEN}/" "s/CONFIG_CL_DURATION/${CL_STEP}/"
  local options="--deepspeed --deepspeed_config ${config_json} --pipeline-model-parallel-size ${PP_SIZE} \
    --no-pipeline-parallel"
  [ "${ACTIVATION_CHECKPOINT}" = "true" ] && options="$options --checkpoint-activations --deepspeed-activation-checkpointing"
  echo "$options"
}

# The derived values every script computes the same way: the deliberately long TRAIN_ITERS (train_tokens
# ends the run), the curriculum's length in steps, the expert-parallel size (over the student's and
# any teacher's experts), the output folders.
derive_run_values() {
  EP_PARALLEL_SIZE=$(ep_parallel_size "${EP_SIZE:-1} ${EP_SIZE_TEACHER:-}")
  TRAIN_ITERS=$(( TRAIN_TOKENS * 3 / GLOBAL_BATCH_SIZE / SEQ_LEN ))
  CL_AVG_SEQLEN=$(( (CL_START_SEQLEN + SEQ_LEN) / 2 ))
  CL_STEP=$(( CL_TOKENS / (GLOBAL_BATCH_SIZE * CL_AVG_SEQLEN) ))
  TENSORBOARD_DIR="${OUTPUT_BASEPATH}/tensorboard/${NAME}"
  CHECKPOINT_PATH="${OUTPUT_BASEPATH}/checkpoint/${NAME}"
  mkdir -p "$TENSORBOARD_DIR" "${OUTPUT_BASEPATH}/checkpoint"
}
