#!/bin/sh
# A rank that dies does not leave the others waiting in a collective forever: rank 1 is killed
# (SIGKILL) once training has logged its first iteration under mpirun -np 2; the whole job must
# end, with a non-zero status, within 60 seconds of starting.
# usage: rank_death_ends_job.sh MOETRAIN CONFIG DATA_PREFIX MPIEXEC
set -u
bin=$1 config=$2 data=$3 mpiexec=$4
d=$(mktemp -d)
# Each rank runs a shell that execs moetrain; on rank 1 a background job waits for the first
# logged iteration (metrics file not empty) and kills that process.
export RANK_DEATH_METRICS="$d/metrics.jsonl"
"$mpiexec" -np 2 --oversubscribe -x RANK_DEATH_METRICS sh -c '
  if [ "${OMPI_COMM_WORLD_RANK:-0}" = 1 ]; then
    (until [ -s "$RANK_DEATH_METRICS" ]; do sleep 0.2; done; kill -9 $$) &
  fi
  exec "$0" "$@"' "$bin" train "$config" --data-path "$data" --num-layers 2 --hidden-size 32 \
  --num-attention-heads 2 --seq-length 32 --max-position-embeddings 32 --micro-batch-size 2 --global-batch-size 4 \
  --train-iters 1000000 --save "" --data-cache-path "$d/cache" --log-interval 1 \
  --metrics-file "$RANK_DEATH_METRICS" > "$d/log" 2>&1 &
job=$!
waited=0
while kill -0 $job 2>/dev/null; do
  sleep 1
  waited=$((waited + 1))
  if [ $waited -gt 60 ]; then
    echo "HANG: the job still runs 60 s after rank 1 was killed"; kill -9 $job; exit 1
  fi
done
wait $job
status=$?
tail -5 "$d/log"
test -s "$RANK_DEATH_METRICS" || { echo "training never started"; exit 1; }
if [ $status -ne 0 ]; then
  echo "rank 1 killed: the job ended with status $status after ${waited}s"
  rm -rf "$d"
  exit 0
fi
echo "the job ended with status 0 although rank 1 was killed"; exit 1
