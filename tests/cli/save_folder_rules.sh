#!/bin/sh
# The save folder as a user meets it on the command line (issue 16 items 1-4, issue 23 items 8, 13):
# a second run into a folder with checkpoints is refused with the ways out (the error last), a
# resume of a finished run says so, a lost `latest` resumes from the newest checkpoint, the
# temporaries of a killed write are removed and named, a mistyped --load is an error.
# usage: save_folder_rules.sh MOETRAIN CONFIG DATA_PREFIX
set -u
bin=$1 config=$2 data=$3
d=$(mktemp -d)
run() {  # run ARGS...: one tiny training into $d/run, output into $d/log; prints the exit status
  "$bin" train "$config" --data-path "$data" --split 949,50,1 --num-layers 1 --hidden-size 16 \
    --num-attention-heads 2 --seq-length 16 --max-position-embeddings 16 --micro-batch-size 2 \
    --global-batch-size 2 --lr-warmup-iters 1 --lr-decay-iters 100 --eval-interval 1000 --eval-iters 1 --log-interval 1 \
    --save-interval 2 --save "$d/run" --data-cache-path "$d/cache" "$@" > "$d/log" 2>&1
  echo $?
}
fail() { echo "FAILED: $1"; cat "$d/log"; rm -rf "$d"; exit 1; }
expect() {  # expect PATTERN WHAT: the log has PATTERN
  grep -q -- "$1" "$d/log" || fail "$2: no '$1' in the output"
}

[ "$(run --train-iters 4)" = 0 ] || fail "first run"
[ "$(run --train-iters 4)" = 1 ] || fail "a second run from scratch into the folder was not refused"
tail -n 1 "$d/log" | grep -q "already holds checkpoints.*--load $d/run" || fail "the refusal is not the last line"
[ "$(run --train-iters 4 --load "$d/run")" = 0 ] || fail "resume of the finished run"
expect "already complete" "resume of a finished run"
grep -q "saved checkpoint" "$d/log" && fail "a finished run was saved again"
rm "$d/run/latest"
mkdir "$d/run/iter_0000006.tmp-999999@$(hostname)" && head -c 100000 /dev/zero > "$d/run/iter_0000006.tmp-999999@$(hostname)/model.safetensors"
[ "$(run --train-iters 6 --load "$d/run")" = 0 ] || fail "resume without latest"
expect "no 'latest' file: taking its newest complete checkpoint, iter_0000004" "a lost latest"
expect "resumed from $d/run/iter_0000004 at iteration 4" "a lost latest"
expect "removed 1 stale temporaries.*iter_0000006.tmp-999999" "a killed write's temporary"
[ -e "$d/run/iter_0000006.tmp-999999@$(hostname)" ] && fail "the stale temporary is still there"
[ "$(run --train-iters 6 --load "$d/rnu")" = 1 ] || fail "a mistyped --load was not refused"
expect "load: '$d/rnu' does not exist" "a mistyped --load"
echo "save folder rules hold"
rm -rf "$d"
