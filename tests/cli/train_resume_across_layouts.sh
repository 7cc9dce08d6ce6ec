#!/bin/sh
# A checkpoint saved under one parallel layout resumes under another and continues the same loss
# curve: 8 iterations in one process (the reference); 4 iterations under mpirun -np 2 with the
# experts spread over both ranks (ep 2), saved; then iterations 5-8 resumed from that checkpoint
# in one process (ep 1), under mpirun -np 4 with ep 4, and under mpirun -np 2 with tensor
# parallelism (tp 2); and 4 iterations at tp 2 x dp 2 (4 ranks), saved, resumed in one process.
# Every loss, gradient norm and validation loss equals the reference within 1e-5 relative
# (weights and AdamW moments of every expert and every tensor-parallel shard travel).
# usage: train_resume_across_layouts.sh MOETRAIN CONFIG DATA_PREFIX MPIEXEC [FLAGS...]
set -eu
. "$(dirname "$0")/metrics_lib.sh"
bin=$1 config=$2 data=$3 mpiexec=$4
shift 4
d=$(mktemp -d)
common="--data-path $data --split 949,50,1 --train-iters 8 --num-layers 2 --hidden-size 32 --num-attention-heads 2
  --seq-length 32 --max-position-embeddings 32 --micro-batch-size 2 --global-batch-size 8 --lr-warmup-iters 2
  --hidden-dropout 0.1 --attention-dropout 0.1 --eval-interval 4 --eval-iters 2 --log-interval 1
  --data-cache-path $d/cache $*"
run() {  # run LOG [launcher...] -- [flags...]
  log=$1; shift
  "$@" > "$d/$log.log" 2>&1 || { echo "run $log failed:"; tail -20 "$d/$log.log"; exit 1; }
}
run reference "$bin" train "$config" $common --save "" --metrics-file "$d/reference.jsonl"
run ep2 "$mpiexec" -np 2 --oversubscribe "$bin" train "$config" $common --moe-expert-parallel-size 2 \
  --save "$d/ep2" --exit-interval 4 --metrics-file "$d/ep2.jsonl"
test -f "$d/ep2/iter_0000004/model.safetensors" && test ! -e "$d/ep2/iter_0000008"
run ep1 "$bin" train "$config" $common --load "$d/ep2" --save "$d/ep1" --metrics-file "$d/ep1.jsonl"
run ep4 "$mpiexec" -np 4 --oversubscribe "$bin" train "$config" $common --moe-expert-parallel-size 4 \
  --load "$d/ep2" --save "$d/ep4" --metrics-file "$d/ep4.jsonl"
run tp2 "$mpiexec" -np 2 --oversubscribe "$bin" train "$config" $common --tensor-model-parallel-size 2 \
  --load "$d/ep2" --save "$d/tp2" --metrics-file "$d/tp2.jsonl"
run tp2dp2 "$mpiexec" -np 4 --oversubscribe "$bin" train "$config" $common --tensor-model-parallel-size 2 \
  --save "$d/tp2dp2" --exit-interval 4 --metrics-file "$d/tp2dp2.jsonl"
run from_tp2dp2 "$bin" train "$config" $common --load "$d/tp2dp2" --save "$d/from_tp2dp2" \
  --metrics-file "$d/from_tp2dp2.jsonl"
for log in ep1 ep4 tp2 from_tp2dp2; do grep -q "resumed from .*iter_0000004 at iteration 4" "$d/$log.log"; done
metrics_values "$d/reference.jsonl" > "$d/want"
status=0
for layout in ep1 ep4 tp2 tp2dp2; do
  case $layout in
    tp2dp2) metrics_values "$d/tp2dp2.jsonl" "$d/from_tp2dp2.jsonl" > "$d/got_$layout" ;;
    *) metrics_values "$d/ep2.jsonl" "$d/$layout.jsonl" > "$d/got_$layout" ;;
  esac
  if [ "$(same_values "$d/want" "$d/got_$layout" 18 1e-5)" = yes ]; then
    case $layout in
      tp2dp2) echo "saved at tp 2 x dp 2, resumed in one process: the loss curve of one uninterrupted process" ;;
      *) echo "saved at ep 2, resumed at $layout: the loss curve of one uninterrupted process" ;;
    esac
  else
    echo "MISMATCH for $layout:"; paste "$d/want" "$d/got_$layout"; status=1
  fi
done
if [ $status -eq 0 ]; then
  echo "every resumed layout continues the uninterrupted loss curve"
  rm -rf "$d"
fi
exit $status
