#!/bin/sh
# Blending with a bundled config as docs/training.md shows it (issue 23): `--data-path 0.3 A 0.7 B`
# with the tiny configs' split 95,5,0 (no test share) trains and evaluates; no test set is built.
# A is the bundled Megatron sample, B Tiny Shakespeare prepared as the config's comment says.
# usage: blend_tiny_config.sh MOETRAIN CONFIG SAMPLE_PREFIX TINYSHAKESPEARE_TXT
set -u
bin=$1 config=$2 sample=$3 text=$4
d=$(mktemp -d)
"$bin" preprocess --input "$text" --input-format text --text-documents paragraph \
  --output-prefix "$d/tinyshakespeare" --append-eod > "$d/preprocess.log" 2>&1 ||
  { cat "$d/preprocess.log"; echo "FAILED: preprocess"; exit 1; }
"$bin" train "$config" --data-path 0.3 "$sample" 0.7 "$d/tinyshakespeare_text_document" --train-iters 4 \
  --num-layers 2 --hidden-size 32 --num-attention-heads 2 --seq-length 32 --max-position-embeddings 32 \
  --micro-batch-size 2 --global-batch-size 4 --lr-warmup-iters 1 --eval-interval 2 --eval-iters 1 \
  --log-interval 1 --save "$d/run" --data-cache-path "$d/cache" > "$d/train.log" 2>&1
rc=$?
grep -v '^ *[a-z_0-9]*: ' "$d/train.log"  # the log without the effective configuration
trained=$(grep -c '^iteration *[1-4]/4 .* loss [0-9]' "$d/train.log")
evaluated=$(grep -c '^iteration *[24] | validation loss [0-9]' "$d/train.log")
# the index cache holds the components' train and valid arrays only: 2 datasets x 2 splits
cached=$(ls "$d/cache"/*.dsc | wc -l)
if [ $rc -eq 0 ] && [ "$trained" -eq 4 ] && [ "$evaluated" -eq 2 ] && [ "$cached" -eq 4 ] &&
   ! grep -q "Dataset name test" "$d/cache"/*.dsc; then
  echo "the blend of 2 datasets trained 4 iterations and evaluated twice, without a test set"
  rm -rf "$d"
  exit 0
fi
echo "FAILED: exit code $rc, $trained iterations, $evaluated evaluations, $cached cached index sets"
exit 1
