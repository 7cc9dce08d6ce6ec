#!/bin/sh
# The global-batch balancing loss does not depend on how the global batch is cut into
# micro-batches: a global batch of 4 trained as one micro-batch of 4 and as two of 2 (gradient
# accumulation; dropless routing, so each token's expert output is the same either way) gives
# the same losses and gradient norms for 10 iterations (1e-5), while DeepSpeed's micro-batch
# aux_loss differs between the two (its fractions are each micro-batch's own): the control that
# shows the comparison can fail.
# usage: global_aux_loss_batching.sh MOETRAIN CONFIG DATA_PREFIX
set -eu
. "$(dirname "$0")/metrics_lib.sh"
bin=$1 config=$2 data=$3
d=$(mktemp -d)
common="--data-path $data --split 949,50,1 --train-iters 10 --num-layers 2 --hidden-size 32 --num-attention-heads 2
  --seq-length 32 --max-position-embeddings 32 --global-batch-size 4 --lr-warmup-iters 1 --hidden-dropout 0.1
  --attention-dropout 0.1 --eval-interval 10 --eval-iters 1 --log-interval 1 --disable-moe-token-dropping
  --moe-loss-coeff 0.5"
for balancing in aux_loss global_aux_loss; do
  for micro in 4 2; do
    run=$balancing-$micro
    "$bin" train "$config" $common --micro-batch-size $micro --moe-router-load-balancing-type $balancing \
      --save "$d/$run" --metrics-file "$d/$run.jsonl" --data-cache-path "$d/cache" > "$d/$run.log" 2>&1 ||
      { echo "$run failed:"; tail -5 "$d/$run.log"; exit 1; }
    metrics_values "$d/$run.jsonl" > "$d/$run.values"
  done
done
n=$(wc -l < "$d/global_aux_loss-4.values")
paste "$d/global_aux_loss-4.values" "$d/global_aux_loss-2.values" | head -6
global=$(same_values "$d/global_aux_loss-4.values" "$d/global_aux_loss-2.values" "$n" 1e-5)
micro=$(same_values "$d/aux_loss-4.values" "$d/aux_loss-2.values" "$n" 1e-4)
echo "global_aux_loss, 1 x 4 vs 2 x 2 equal: $global; aux_loss equal: $micro"
if [ "$n" -ge 21 ] && [ "$global" = yes ] && [ "$micro" = no ]; then
  echo "global_aux_loss is the same for any micro-batch size (aux_loss is not)"
  rm -rf "$d"
  exit 0
fi
exit 1
