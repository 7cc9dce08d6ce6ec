#!/bin/sh
# Activation checkpointing under mpirun: NP ranks train the same bytes with --checkpoint-activations
# as without it (model and optimizer checkpoints, every logged loss and gradient norm). The
# recompute runs the layers' collectives again in the backward: the expert all-to-all (EP) and the
# tensor-parallel all-reduces (TP), on every rank in the same order. Dropout on.
# FLAGS (the layout and model options, e.g. --moe-expert-parallel-size 2) apply to both runs.
# usage: train_recompute_parallel.sh MOETRAIN CONFIG DATA_PREFIX MPIEXEC NP NAME [FLAGS...]
set -eu
bin=$1 config=$2 data=$3 mpiexec=$4 np=$5 name=$6
shift 6
d=$(mktemp -d)
common="--data-path $data --split 949,50,1 --train-iters 6 --num-layers 2 --hidden-size 32 --num-attention-heads 2
  --seq-length 32 --max-position-embeddings 32 --micro-batch-size 2 --lr-warmup-iters 1 --hidden-dropout 0.1
  --attention-dropout 0.1 --eval-interval 6 --eval-iters 1 --log-interval 1 --save-interval 6"
for run in plain recomputed; do
  extra=""
  if [ "$run" = recomputed ]; then extra="--checkpoint-activations"; fi
  "$mpiexec" -np "$np" --oversubscribe "$bin" train "$config" $common "$@" $extra --save "$d/$run" \
    --metrics-file "$d/$run.jsonl" --data-cache-path "$d/cache-$run" > "$d/$run.log" 2>&1 ||
    { echo "$run run failed:"; tail -20 "$d/$run.log"; exit 1; }
done
ls "$d/plain/iter_0000006" | grep safetensors > "$d/files"
test -s "$d/files"
for f in $(cat "$d/files"); do
  cmp "$d/plain/iter_0000006/$f" "$d/recomputed/iter_0000006/$f" || { echo "MISMATCH in $f"; exit 1; }
done
. "$(dirname "$0")/metrics_lib.sh"
metrics_values "$d/plain.jsonl" > "$d/a"
metrics_values "$d/recomputed.jsonl" > "$d/b"
cmp "$d/a" "$d/b" || { echo "MISMATCH in the logged losses"; paste "$d/a" "$d/b"; exit 1; }
echo "$name: checkpoint_activations trains the same bytes ($(tr '\n' ' ' < "$d/files"), $(wc -l < "$d/a") logged values)"
rm -rf "$d"
