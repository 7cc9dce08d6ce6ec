#!/bin/sh
# Mixture-of-Students under mpirun equals one process: a 3-layer MoE teacher (4 experts) is
# trained briefly, then the 2-layer student distils from it (KD until iteration 12, staged) with
# train_parallel_matches_single.sh's comparison: one process against NP ranks (TP, EP).
# usage: mos_parallel_matches_single.sh MOETRAIN CONFIG DATA_PREFIX MPIEXEC NP TP EP NAME
set -eu
bin=$1 config=$2 data=$3 mpiexec=$4 np=$5 tp=$6 ep=$7 name=$8
d=$(mktemp -d)
"$bin" train "$config" --data-path "$data" --split 949,50,1 --num-layers 3 --hidden-size 32 --num-attention-heads 2 \
  --seq-length 32 --max-position-embeddings 32 --micro-batch-size 2 --global-batch-size 4 --train-iters 4 \
  --lr-warmup-iters 1 --num-experts 4 --save "$d/teacher" --data-cache-path "$d/cache" > "$d/teacher.log" 2>&1 ||
  { echo "teacher training failed:"; tail -5 "$d/teacher.log"; exit 1; }
sh "$(dirname "$0")/train_parallel_matches_single.sh" "$bin" "$config" "$data" "$mpiexec" "$np" "$tp" "$ep" "$name" \
  --mos true --load-teacher "$d/teacher" --num-layers-teacher 3 --num-experts-teacher 4 --kd-temp 2 --kd-stop-step 12
status=$?
rm -rf "$d"
exit $status
