#!/usr/bin/env bash
# `make demo`: the whole path a user takes, on the CPU, in a few minutes:
#   1. preprocess the bundled Tiny Shakespeare into a Megatron dataset (GPT-2 BPE) at
#      data/tinyshakespeare_text_document, the tiny configs' data_path (kept when it is there),
#   2. train configs/tiny-pr-moe.yaml on it: a PR-MoE GPT (residual MoE, 4 and 8 experts) - the
#      validation loss is printed as it falls, with the experts' loads; in bf16 where the CPU has
#      bf16 matrix units (AMX, AVX512-BF16), else fp32 (--precision auto: the log names the path),
#   3. show the model's structure and expert loads (moetrain inspect),
#   4. generate a sample from the trained checkpoint,
#   5. score it on the zero-shot tasks (the small subsets in assets/eval; docs/eval.md).
# The run goes to build/demo/run and starts from scratch each time.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${MOETRAIN_BIN:-build/bin/moetrain}
out=build/demo
rm -rf "$out/run"
mkdir -p "$out"

data=data/tinyshakespeare_text_document
echo "== 1. preprocess: assets/tinyshakespeare/input.txt -> $data.{bin,idx}"
if [ ! -f "$data.idx" ] || [ ! -f "$data.bin" ]; then
  mkdir -p data
  "$bin" preprocess --input assets/tinyshakespeare/input.txt --input-format text --text-documents paragraph \
    --output-prefix data/tinyshakespeare --append-eod --workers "$(nproc)"
else
  echo "(already there)"
fi

echo
config=${MOETRAIN_DEMO_CONFIG:-configs/tiny-pr-moe.yaml}
echo "== 2. train: $config"
"$bin" train "$config" --data-path "$data" --save "$out/run" --precision auto "$@"

echo
echo "== 3. inspect: $out/run"
"$bin" inspect --load "$out/run"

echo
echo "== 4. generate: a sample from $out/run"
"$bin" generate --load "$out/run" --prompt $'ROMEO:\n' --max-new-tokens 120 --temperature 0.8 --top-k 50 --no-stop-at-eod

echo
echo
echo "== 5. zero-shot evaluation of $out/run (assets/eval: the first documents of each task)"
"$bin" eval --load "$out/run" --task-data assets/eval --quiet
