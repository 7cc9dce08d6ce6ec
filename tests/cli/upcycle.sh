#!/bin/sh
# Sparse upcycling as a user runs it (docs/moe.md): a dense model trained 12 iterations; `moetrain
# upcycle` makes an 8-expert top-2 model of its checkpoint; `moetrain train` continues it from that
# checkpoint (AdamW afresh) and its loss falls; the upcycled model starts near where the dense one
# stopped (its first loss below the dense run's first), not from scratch. The same with
# moe_use_upcycling inside `moetrain train`. An MoE checkpoint is refused by `moetrain upcycle`.
# usage: upcycle.sh MOETRAIN CONFIG_DENSE DATA_PREFIX
set -eu
. "$(dirname "$0")/metrics_lib.sh"
bin=$1 config=$2 data=$3
d=$(mktemp -d)
common="--data-path $data --split 949,50,1 --num-layers 2 --hidden-size 32 --num-attention-heads 2 --seq-length 32
  --max-position-embeddings 32 --micro-batch-size 2 --global-batch-size 4 --lr-warmup-iters 1 --log-interval 1
  --eval-interval 100 --eval-iters 1 --save-interval 100 --data-cache-path $d/cache"
fail() { echo "FAILED: $1"; rm -rf "$d"; exit 1; }
"$bin" train "$config" $common --train-iters 12 --save "$d/dense" --metrics-file "$d/dense.jsonl" > "$d/dense.log" 2>&1 ||
  fail "the dense run: $(tail -3 "$d/dense.log")"
"$bin" upcycle --load "$d/dense" --save "$d/upcycled" --num-experts 8 --topk 2 > "$d/upcycle.log" 2>&1 ||
  fail "upcycle: $(tail -3 "$d/upcycle.log")"
cat "$d/upcycle.log"
grep -q "every expert a copy of its layer's dense MLP" "$d/upcycle.log" || fail "upcycle said nothing of the copies"
test -f "$d/upcycled/iter_0000000/model.safetensors" || fail "no upcycled checkpoint"
test ! -f "$d/upcycled/iter_0000000/optimizer.safetensors" || fail "the upcycled checkpoint has optimizer state"
"$bin" train "$d/upcycled/iter_0000000/config.yaml" $common --train-iters 12 --load "$d/upcycled" --save "$d/moe" \
  --metrics-file "$d/moe.jsonl" > "$d/moe.log" 2>&1 || fail "training the upcycled model: $(tail -3 "$d/moe.log")"
grep -q "AdamW afresh" "$d/moe.log" || fail "the upcycled run did not start AdamW afresh"
"$bin" train "$config" $common --train-iters 12 --num-experts 8 --topk 2 --moe-use-upcycling --load "$d/dense" \
  --save "$d/moe2" --metrics-file "$d/moe2.jsonl" > "$d/moe2.log" 2>&1 || fail "moe_use_upcycling: $(tail -3 "$d/moe2.log")"
grep -q "upcycled the dense checkpoint" "$d/moe2.log" || fail "moe_use_upcycling did not upcycle"
"$bin" upcycle --load "$d/moe" --save "$d/again" --num-experts 8 > "$d/again.log" 2>&1 && fail "an MoE checkpoint was upcycled"
grep -q "already an MoE checkpoint" "$d/again.log" || fail "the MoE checkpoint's refusal: $(tail -2 "$d/again.log")"
dense_first=$(metrics_losses "$d/dense.jsonl" | head -1)
for run in moe moe2; do
  first=$(metrics_losses "$d/$run.jsonl" | head -1) last=$(metrics_losses "$d/$run.jsonl" | tail -1)
  echo "$run: loss $first -> $last (the dense run started at $dense_first)"
  awk -v a="$first" -v b="$last" -v c="$dense_first" 'BEGIN { exit !(b < a && a < c) }' ||
    fail "$run: the upcycled model's loss did not start below the dense run's first and fall"
done
echo "upcycled models continue the dense model's training with a falling loss"
rm -rf "$d"
