#!/bin/sh
# `moetrain eval` as a user runs it: a tiny MoE model trained for a few iterations, evaluated on
# every task of assets/eval; the table has a number in every column, the JSON file every task;
# under mpirun -np 2 (requests split over the ranks) the table is the same.
# usage: eval_checkpoint.sh MOETRAIN CONFIG DATA_PREFIX TASK_DATA MPIEXEC
set -eu
bin=$1 config=$2 data=$3 tasks=$4 mpiexec=$5
d=$(mktemp -d)
"$bin" train "$config" --data-path "$data" --split 949,50,1 --num-layers 2 --hidden-size 32 --num-attention-heads 2 \
  --seq-length 64 --max-position-embeddings 64 --micro-batch-size 2 --global-batch-size 4 --train-iters 4 \
  --lr-warmup-iters 1 --save "$d/run" --data-cache-path "$d/cache" > "$d/train.log" 2>&1
"$bin" eval --load "$d/run" --task-data "$tasks" --limit 20 --output "$d/results.json" > "$d/one.txt" 2> "$d/one.err"
cat "$d/one.txt"
grep -q '^| checkpoint | lambada acc (%) | lambada ppl | piqa acc (%)' "$d/one.txt"
row=$(grep "^| $d/run" "$d/one.txt")
if echo "$row" | grep -q "n/a"; then echo "a task did not run: $row"; cat "$d/one.err"; exit 1; fi
for t in lambada piqa boolq race triviaqa webqs wikitext; do grep -q "\"$t\": {" "$d/results.json"; done
grep -q '"acc_stderr"' "$d/results.json"
"$mpiexec" -np 2 --oversubscribe "$bin" eval --load "$d/run" --task-data "$tasks" --limit 20 --quiet > "$d/two.txt"
if [ "$(grep "^| $d/run" "$d/two.txt")" = "$row" ]; then
  echo "eval: every task scored; 2 ranks give the same table"
  rm -rf "$d"
  exit 0
fi
echo "MISMATCH between 1 and 2 ranks:"; cat "$d/two.txt"
exit 1
