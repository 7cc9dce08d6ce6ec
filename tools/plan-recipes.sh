#!/bin/bash
# The memory-plan table of docs/performance.md ("Memory plans for the seed's recipes"): `moetrain
# plan` per rank for the seed's recipes on 8, 32 and 128 GPUs of 80 GB at ZeRO 0, 1 and 2, as the
# seed's scripts run them (fp16, activation checkpointing, expert parallelism over min(GPUs, the
# smallest expert count), micro-batch x dp as the global batch). Nothing is allocated.
# usage: tools/plan-recipes.sh [MOETRAIN]   (default build/bin/moetrain)
set -euo pipefail
bin=${1:-build/bin/moetrain}
root=$(cd "$(dirname "$0")/.." && pwd)
# name | config | extra flags | smallest expert count
recipes=(
  "350M MoE-128 (gpt-350M-moe128.yaml)|gpt-350M-moe128.yaml||128"
  "350M PR-MoE-32/64 + MoS (gpt-350M-pr-moe-mos.yaml)|gpt-350M-pr-moe-mos.yaml||32"
  "1.3B PR-MoE-64/128 (gpt-1.3B-pr-moe.yaml)|gpt-1.3B-pr-moe.yaml||64"
  "1.3B MoE-128 (gpt-1.3B-pr-moe.yaml --num-experts 128 --mlp-type standard)|gpt-1.3B-pr-moe.yaml|--num-experts 128 --mlp-type standard|128"
)
echo "| recipe | GPUs | ep | ZeRO 0 | ZeRO 1 | ZeRO 2 |"
echo "|---|---|---|---|---|---|"
for r in "${recipes[@]}"; do
  IFS='|' read -r name config extra experts <<< "$r"
  micro=$(grep -E '^micro_batch_size:' "$root/configs/$config" | awk '{print $2}')
  for gpus in 8 32 128; do
    ep=$((gpus < experts ? gpus : experts))
    row="| $name | $gpus | $ep |"
    for stage in 0 1 2; do
      # shellcheck disable=SC2086
      out=$("$bin" plan "$root/configs/$config" $extra --ranks "$gpus" --moe-expert-parallel-size "$ep" \
              --global-batch-size $((${micro:-1} * gpus)) --device cuda --precision fp16 --fp16 \
              --checkpoint-activations --zero-stage "$stage" --memory-gb 80 2>&1) || true
      total=$(echo "$out" | grep -m1 'total (allocator peak)' | awk '{print $4}')
      verdict=$(echo "$out" | grep -q '^does not fit' && echo "does not fit" || echo "fits")
      row="$row $total GB: $verdict |"
    done
    echo "$row"
  done
done
