#!/bin/sh
# moetrain generate on a just-trained model: it says why it stopped (after max-new-tokens by
# default, which goes on past an end of document), and refuses counts out of range.
# usage: generate_stops.sh MOETRAIN CONFIG DATA_PREFIX
set -u
bin=$1 config=$2 data=$3
d=$(mktemp -d)
fail() { echo "FAILED: $1"; cat "$d/out" 2>/dev/null; rm -rf "$d"; exit 1; }
"$bin" train "$config" --data-path "$data" --split 949,50,1 --train-iters 2 --num-layers 1 --hidden-size 16 \
  --num-attention-heads 2 --seq-length 16 --max-position-embeddings 16 --micro-batch-size 2 --global-batch-size 2 \
  --lr-warmup-iters 1 --eval-iters 0 --save "$d/run" --data-cache-path "$d/cache" > "$d/out" 2>&1 || fail "training"
"$bin" generate --load "$d/run" --prompt "ROMEO:" --max-new-tokens 7 > "$d/out" 2>&1 || fail "generate"
grep -q '^\[stopped: max-new-tokens (7) reached\]$' "$d/out" || fail "no stop reason"
"$bin" generate --load "$d/run" --prompt "ROMEO:" --max-new-tokens 7 --stop-at-eod --min-new-tokens 7 > "$d/out" 2>&1 ||
  fail "generate --stop-at-eod"
grep -q '^\[stopped: max-new-tokens (7) reached\]$' "$d/out" || fail "an end of document before --min-new-tokens"
"$bin" generate --load "$d/run" --prompt "ROMEO:" --max-new-tokens -3 > "$d/out" 2>&1 && fail "--max-new-tokens -3 accepted"
tail -n 1 "$d/out" | grep -q "error: --max-new-tokens must be 0 or more, got -3" || fail "no clear error for -3"
rm -rf "$d"
echo "generate says why it stopped"
