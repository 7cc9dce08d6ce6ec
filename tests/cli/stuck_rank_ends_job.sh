#!/bin/sh
# A rank that stops answering (SIGSTOP, as a dead file-system mount or a wedged GPU would stop it)
# does not hang the job. Under mpirun -np 2, once training has logged its first iteration, rank 1
# is stopped, then by MODE:
#   timeout   distributed_timeout_minutes 0.1 (6 s): rank 0 ends the job within 60 s, with a
#             message naming the collective, its group and rank 1 as the rank that did not arrive
#   signals   the default timeout (10 min); two SIGTERMs to rank 0 end the job within 30 s
#   launcher  mpirun is killed (SIGKILL): no rank survives it by more than 30 s, the stopped one
#             included
# In every mode no process of the job may be left afterwards.
# usage: stuck_rank_ends_job.sh MODE MOETRAIN CONFIG DATA_PREFIX MPIEXEC
set -u
mode=$1 bin=$2 config=$3 data=$4 mpiexec=$5
d=$(mktemp -d)
export STUCK_RANK_DIR="$d"
timeout_flag=""
if [ "$mode" = timeout ]; then timeout_flag="--distributed-timeout-minutes 0.1"; fi
# Each rank is a shell that writes its pid, then execs moetrain (same pid).
# shellcheck disable=SC2086
"$mpiexec" -np 2 --oversubscribe -x STUCK_RANK_DIR sh -c '
  echo $$ > "$STUCK_RANK_DIR/pid.${OMPI_COMM_WORLD_RANK:-0}"
  exec "$0" "$@"' "$bin" train "$config" --data-path "$data" --num-layers 2 --hidden-size 32 \
  --num-attention-heads 2 --seq-length 32 --max-position-embeddings 32 --micro-batch-size 2 --global-batch-size 4 \
  --train-iters 1000000 --save "" --data-cache-path "$d/cache" --log-interval 1 \
  --metrics-file "$d/metrics.jsonl" $timeout_flag > "$d/log" 2>&1 &
job=$!

# alive PID: the process exists and is not a zombie.
alive() {
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}
# finish STATUS MESSAGE: prints the log's tail and the message, ends every process left, exits.
finish() {
  tail -8 "$d/log"
  echo "$2"
  kill -9 "$job" 2>/dev/null
  for p in ${rank0:-} ${rank1:-}; do kill -9 "$p" 2>/dev/null; done
  [ "$1" -eq 0 ] && rm -rf "$d"
  exit "$1"
}
# gone_within SECONDS PID...: whether every PID has ended within SECONDS.
gone_within() {
  limit=$1
  shift
  t=0
  while [ $t -lt $((limit * 5)) ]; do
    left=""
    for p in "$@"; do alive "$p" && left="$left $p"; done
    [ -z "$left" ] && return 0
    sleep 0.2
    t=$((t + 1))
  done
  return 1
}

i=0
until [ -s "$d/metrics.jsonl" ] && [ -s "$d/pid.0" ] && [ -s "$d/pid.1" ]; do
  sleep 0.2
  i=$((i + 1))
  if [ $i -gt 600 ] || ! kill -0 $job 2>/dev/null; then finish 1 "FAILED: training never started"; fi
done
rank0=$(cat "$d/pid.0") rank1=$(cat "$d/pid.1")
kill -STOP "$rank1"
sleep 1
case $mode in
  timeout)
    gone_within 60 "$job" || finish 1 "HANG: the job still runs 60 s after rank 1 stopped"
    wait $job
    status=$?
    [ $status -ne 0 ] || finish 1 "FAILED: the job ended with status 0"
    line=$(grep "has waited" "$d/log" | head -1)
    echo "$line" | grep -Eq "[a-z_]+ #[0-9]+ on the [a-z ]+ group \(world ranks 0-1\) has waited 6 s on world rank 0.*: world rank 1 .*did not arrive" ||
      finish 1 "FAILED: no message naming the collective, its group and rank 1"
    echo "$line"
    gone_within 30 "$rank0" "$rank1" || finish 1 "FAILED: a rank survived the end of the job"
    finish 0 "stuck rank: the job ended after the timeout, naming rank 1"
    ;;
  signals)
    kill -TERM "$rank0"
    sleep 1
    kill -TERM "$rank0"
    gone_within 30 "$job" || finish 1 "HANG: the job still runs 30 s after a second SIGTERM"
    wait $job
    grep "second stop signal" "$d/log" || finish 1 "FAILED: no message from the second signal"
    gone_within 30 "$rank0" "$rank1" || finish 1 "FAILED: a rank survived the end of the job"
    finish 0 "stuck rank: a second SIGTERM ended the job at once"
    ;;
  launcher)
    kill -9 "$job"
    gone_within 30 "$rank0" "$rank1" || finish 1 "FAILED: a rank survived mpirun by 30 s"
    finish 0 "stuck rank: no rank survived mpirun"
    ;;
esac
finish 1 "unknown mode $mode"
