#!/bin/sh
# `moetrain eval` with the exact flags of Megatron-DeepSpeed's ds_evalharness.sh (the launcher
# swapped, --task-data and --limit added to keep it short): a tiny MoE checkpoint scored with
# --results_path (lm-evaluation-harness's JSON) and --output (ours) in one run; the two files hold
# the same numbers, the former in lm-eval's layout. Then the refusals: a model shape flag that
# disagrees with the checkpoint, pipeline parallelism, a task moetrain does not have.
# Needs python3 to read the JSON (exit 77, skipped, without it).
# usage: eval_harness_flags.sh MOETRAIN CONFIG DATA_PREFIX TASK_DATA SOURCE_DIR
set -eu
bin=$1 config=$2 data=$3 tasks=$4 src=$5
command -v python3 > /dev/null || { echo "python3 not found: skipped"; exit 77; }
d=$(mktemp -d)
"$bin" train "$config" --data-path "$data" --split 949,50,1 --num-layers 2 --hidden-size 32 --num-attention-heads 2 \
  --seq-length 64 --max-position-embeddings 64 --micro-batch-size 2 --global-batch-size 4 --train-iters 2 \
  --lr-warmup-iters 1 --save "$d/run" --data-cache-path "$d/cache" > "$d/train.log" 2>&1
ckpt="$d/run/iter_0000002"
# the DeepSpeed JSON the MoE scripts pass (ds_config_gpt_TEMPLATE.json, filled)
cat > "$d/ds_config.json" << 'EOF'
{ "train_batch_size": 256, "train_micro_batch_size_per_gpu": 4, "steps_per_print": 10,
  "zero_optimization": { "stage": 0 }, "gradient_clipping": 1.0, "prescale_gradients": true,
  "fp16": { "enabled": true, "loss_scale": 0, "loss_scale_window": 500, "hysteresis": 2,
            "min_loss_scale": 1, "initial_scale_power": 11 },
  "bf16": { "enabled": false }, "wall_clock_breakdown": false }
EOF
# ds_evalharness.sh's CMD, in its order, with MEGATRON_REQUIRED_ARGS and NO_PP="true"
set -- --load "$ckpt" \
  --tensor-model-parallel-size 1 \
  --pipeline-model-parallel-size 1 \
  --moe-expert-parallel-size 1 \
  --vocab-file "$src/assets/gpt2/encoder.json" \
  --merge-file "$src/assets/gpt2/vocab.bpe" \
  --micro-batch-size 12 \
  --no-load-optim \
  --no-load-rng \
  --inference \
  --disable-moe-token-dropping \
  --tokenizer-type GPT2BPETokenizer \
  --adaptive_seq_len \
  --eval_fp32 \
  --task_list lambada,piqa,boolq,wikitext \
  --results_path "$d/lm_eval_results.json" \
  --deepspeed \
  --deepspeed_config "$d/ds_config.json" \
  --num-layers -1 \
  --hidden-size -1 \
  --num-attention-heads -1 \
  --seq-length -1 \
  --max-position-embeddings -1 \
  --no-pipeline-parallel
"$bin" eval "$@" --task-data "$tasks" --limit 5 --output "$d/ours.json" > "$d/eval.txt" 2> "$d/eval.err" ||
  { cat "$d/eval.txt" "$d/eval.err"; exit 1; }
cat "$d/eval.txt"
python3 - "$d/lm_eval_results.json" "$d/ours.json" << 'EOF'
import json, sys
lm = json.load(open(sys.argv[1]))
ours = json.load(open(sys.argv[2]))
assert list(lm) == ["results", "versions"], list(lm)
assert list(lm["results"]) == ["lambada", "piqa", "boolq", "wikitext"], list(lm["results"])
assert lm["versions"] == {"lambada": 0, "piqa": 0, "boolq": 1, "wikitext": 1}, lm["versions"]
expected = {"lambada": ["ppl", "ppl_stderr", "acc", "acc_stderr"], "piqa": ["acc", "acc_stderr", "acc_norm", "acc_norm_stderr"],
            "boolq": ["acc", "acc_stderr"], "wikitext": ["word_perplexity", "byte_perplexity", "bits_per_byte"]}
run = ours["results"][0]
assert run["precision"] == "fp32" and run["batch_tokens"] == 12 * 64, (run["precision"], run["batch_tokens"])
n = 0
for task, metrics in lm["results"].items():
    assert list(metrics) == expected[task], (task, list(metrics))
    for metric, value in metrics.items():
        assert isinstance(value, float), (task, metric, value)
        assert value == run["tasks"][task][metric], (task, metric, value, run["tasks"][task][metric])
        n += 1
print(f"results_path: lm-eval's layout, {n} numbers equal to --output's")
EOF
# the refusals, each the last line a user sees
refused() {
  if "$bin" eval "$@" --task-data "$tasks" --limit 1 > "$d/refused.txt" 2>&1; then
    echo "not refused: $*"; exit 1
  fi
  tail -n 1 "$d/refused.txt"
}
refused --load "$ckpt" --num-layers 3 --hidden-size -1 | grep "moetrain eval: error: --num-layers 3 disagrees with the checkpoint .*iter_0000002, whose num_layers is 2"
refused --load "$ckpt" --seq-length 128 | grep "error: --seq-length 128 disagrees with the checkpoint .*, whose seq_length is 64"
refused --load "$ckpt" --pipeline-model-parallel-size 2 | grep "error: --pipeline-model-parallel-size 2: pipeline parallelism is not supported"
refused --load "$ckpt" --task_list lambada,hellaswag | grep "error: --task_list: moetrain eval has no task 'hellaswag'"
refused --load "$ckpt" --tokenizer-type HFTokenizer | grep "error: --tokenizer-type HFTokenizer: moetrain reads the GPT-2 BPE only"
refused --load "$ckpt" "$ckpt" --results_path "$d/x.json" | grep "error: --results_path writes one checkpoint's results"
echo "eval takes ds_evalharness.sh's flags; results_path in lm-eval's layout equals ours; shape and layout refusals"
rm -rf "$d"
