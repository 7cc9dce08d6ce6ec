#!/bin/sh
# Preemption: SIGTERM while training -> the iteration finishes, a checkpoint is saved, exit 0.
# usage: train_sigterm.sh MOETRAIN CONFIG DATA_PREFIX
set -u
bin=$1 config=$2 data=$3
d=$(mktemp -d)
"$bin" train "$config" --data-path "$data" --split 949,50,1 --train-iters 1000000 --num-layers 1 \
  --hidden-size 16 --num-attention-heads 2 --seq-length 16 --max-position-embeddings 16 \
  --micro-batch-size 2 --global-batch-size 2 --eval-interval 1000000 --log-interval 1 --save-interval 0 \
  --save "$d/run" --data-cache-path "$d/cache" > "$d/log" 2>&1 &
pid=$!
i=0
while [ ! -s "$d/run/metrics.jsonl" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
kill -TERM $pid
wait $pid
rc=$?
grep "received" "$d/log"
tail -3 "$d/log"
if [ $rc -eq 0 ] && [ -f "$d/run/latest" ]; then
  echo "checkpoint $(cat "$d/run/latest") saved, exit code 0"
  rm -rf "$d"
  exit 0
fi
echo "FAILED: exit code $rc; files:"; ls -R "$d"
exit 1
