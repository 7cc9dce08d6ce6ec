#!/bin/sh
# Checkpoints move between ZeRO stages and layouts: 8 iterations in one process (the reference);
# iterations 1-3 under mpirun -np 4 at ZeRO stage 2 (AdamW's moments and the gradients partitioned
# over 4 data-parallel ranks, the experts' over their 2 replicas at ep 2), saved; iterations 4-6
# resumed in one process at stage 0, saved; iterations 7-8 resumed under mpirun -np 2 at stage 1. A
# ZeRO run gathers its moments to write them and keeps its chunk when it loads, so the joined curve of
# losses, gradient norms and validation losses equals the reference within 1e-5 relative.
# usage: train_resume_across_zero_stages.sh MOETRAIN CONFIG DATA_PREFIX MPIEXEC
set -eu
. "$(dirname "$0")/metrics_lib.sh"
bin=$1 config=$2 data=$3 mpiexec=$4
d=$(mktemp -d)
common="--data-path $data --split 949,50,1 --train-iters 8 --num-layers 2 --hidden-size 32 --num-attention-heads 2
  --seq-length 32 --max-position-embeddings 32 --micro-batch-size 2 --global-batch-size 8 --lr-warmup-iters 2
  --hidden-dropout 0.1 --attention-dropout 0.1 --eval-interval 3 --eval-iters 2 --log-interval 1
  --data-cache-path $d/cache"
run() {  # run LOG [launcher...] -- [flags...]
  log=$1; shift
  "$@" > "$d/$log.log" 2>&1 || { echo "run $log failed:"; tail -20 "$d/$log.log"; exit 1; }
}
run reference "$bin" train "$config" $common --save "" --metrics-file "$d/reference.jsonl"
run zero2_np4 "$mpiexec" -np 4 --oversubscribe "$bin" train "$config" $common --zero-stage 2 \
  --moe-expert-parallel-size 2 --save "$d/a" --exit-interval 3 --metrics-file "$d/a.jsonl"
grep -q "ZeRO stage 2: AdamW's moments and the gradients partitioned: dense over 4 data-parallel ranks" \
  "$d/zero2_np4.log"
run zero0_np1 "$bin" train "$config" $common --load "$d/a" --save "$d/b" --exit-interval 6 --metrics-file "$d/b.jsonl"
run zero1_np2 "$mpiexec" -np 2 --oversubscribe "$bin" train "$config" $common --zero-stage 1 --load "$d/b" \
  --save "$d/c" --metrics-file "$d/c.jsonl"
grep -q "resumed from .*iter_0000003 at iteration 3" "$d/zero0_np1.log"
grep -q "resumed from .*iter_0000006 at iteration 6" "$d/zero1_np2.log"
metrics_values "$d/reference.jsonl" > "$d/want"
metrics_values "$d/a.jsonl" "$d/b.jsonl" "$d/c.jsonl" > "$d/got"
if [ "$(same_values "$d/want" "$d/got" 19 1e-5)" = yes ]; then
  echo "ZeRO 2 on 4 ranks -> stage 0 in one process -> ZeRO 1 on 2 ranks: the uninterrupted loss curve"
  rm -rf "$d"
  exit 0
fi
echo "MISMATCH:"; paste "$d/want" "$d/got"
exit 1
