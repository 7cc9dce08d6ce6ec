#!/bin/sh
# Parallel training equals one process: the same global batch trained by 1 process (2 micro-batches
# accumulated) and by NP ranks under mpirun (1 micro-batch each) gives the same losses and gradient
# norms, iteration by iteration, and the same validation loss, within 1e-5 relative (dropout on;
# its masks follow the global sample index).
#   data parallelism (EP 1): gradients averaged; rank 0 also saves a checkpoint.
#   expert parallelism (EP > 1): each rank holds 1/EP of the experts; rows go through all_to_all;
#   expert gradients are summed over their replicas and divided by the data-parallel size.
# FLAGS (model options, e.g. --topk 2) apply to both runs.
# usage: train_parallel_matches_single.sh MOETRAIN CONFIG DATA_PREFIX MPIEXEC NP EP NAME [FLAGS...]
set -eu
bin=$1 config=$2 data=$3 mpiexec=$4 np=$5 ep=$6 name=$7
shift 7
d=$(mktemp -d)
common="--data-path $data --split 949,50,1 --train-iters 6 --num-layers 2 --hidden-size 32 --num-attention-heads 2
  --seq-length 32 --max-position-embeddings 32 --micro-batch-size 2 --global-batch-size $((2 * np)) --lr-warmup-iters 1
  --hidden-dropout 0.1 --attention-dropout 0.1 --eval-interval 6 --eval-iters 2 --log-interval 1"
save=""  # expert-parallel runs cannot save checkpoints yet: unset the config's save directory
if [ "$ep" -eq 1 ]; then save="$d/two"; fi
"$bin" train "$config" $common "$@" --save "$d/one" --metrics-file "$d/one.jsonl" --data-cache-path "$d/cache1" \
  > "$d/one.log" 2>&1
"$mpiexec" -np "$np" --oversubscribe "$bin" train "$config" $common "$@" --moe-expert-parallel-size "$ep" --save "$save" \
  --metrics-file "$d/two.jsonl" --data-cache-path "$d/cache2" > "$d/two.log" 2>&1 || { echo "parallel run failed:"; tail -20 "$d/two.log"; exit 1; }
if [ -n "$save" ]; then test -f "$d/two/iter_0000006/model.safetensors"; fi
# every logged loss and gradient norm (the norm covers all experts, wherever they live)
losses() { grep -o '"\(lm_loss\|grad_norm\)":[-0-9.e+]*' "$1" | cut -d: -f2; }
losses "$d/one.jsonl" > "$d/a"
losses "$d/two.jsonl" > "$d/b"
echo "1 process:"; cat "$d/a"
echo "$np ranks ($name):"; cat "$d/b"
ok=$(paste "$d/a" "$d/b" | awk 'BEGIN { ok = 1; n = 0 }
  { n++; r = ($1 - $2) / ($1 > 0 ? $1 : -$1); if (r < 0) r = -r; if (r > 1e-5) ok = 0 }
  END { print (ok && n == 13) ? "yes" : "no" }')
if [ "$ok" = yes ]; then
  echo "$name matches one process on all 6 iterations and the validation loss"
  rm -rf "$d"
  exit 0
fi
echo "MISMATCH"; tail -5 "$d/two.log"
exit 1
