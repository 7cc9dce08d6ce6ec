#!/bin/sh
# Data parallelism: the same global batch trained by 1 process (2 micro-batches accumulated) and by
# 2 ranks under mpirun (1 micro-batch each, gradients averaged) gives the same losses, iteration
# by iteration, and the same validation loss, within 1e-5 relative (dropout on; its masks follow
# the global sample index).
# usage: train_dp2_matches_single.sh MOETRAIN CONFIG DATA_PREFIX MPIEXEC
set -eu
bin=$1 config=$2 data=$3 mpiexec=$4
d=$(mktemp -d)
common="--data-path $data --split 949,50,1 --train-iters 6 --num-layers 2 --hidden-size 32 --num-attention-heads 2
  --seq-length 32 --max-position-embeddings 32 --micro-batch-size 2 --global-batch-size 4 --lr-warmup-iters 1
  --hidden-dropout 0.1 --attention-dropout 0.1 --eval-interval 6 --eval-iters 2 --log-interval 1"
"$bin" train "$config" $common --save "$d/one" --data-cache-path "$d/cache1" > "$d/one.log" 2>&1
"$mpiexec" -np 2 --oversubscribe "$bin" train "$config" $common --save "$d/two" --data-cache-path "$d/cache2" \
  > "$d/two.log" 2>&1
losses() { grep -o '"lm_loss":[-0-9.e+]*' "$1" | cut -d: -f2; }
losses "$d/one/metrics.jsonl" > "$d/a"
losses "$d/two/metrics.jsonl" > "$d/b"
echo "1 process:"; cat "$d/a"
echo "2 ranks:"; cat "$d/b"
ok=$(paste "$d/a" "$d/b" | awk 'BEGIN { ok = 1; n = 0 }
  { n++; r = ($1 - $2) / ($1 > 0 ? $1 : -$1); if (r < 0) r = -r; if (r > 1e-5) ok = 0 }
  END { print (ok && n == 7) ? "yes" : "no" }')
if [ "$ok" = yes ]; then
  echo "dp2 matches one process on all 6 iterations and the validation loss"
  rm -rf "$d"
  exit 0
fi
echo "MISMATCH"; tail -5 "$d/two.log"
exit 1
