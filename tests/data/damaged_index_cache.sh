#!/bin/sh
# A damaged index cache (issue 16): 4 bytes of every cached shuffle_idx .npy changed, size intact.
# The next run names each damaged file in one line, rebuilds it and trains the same losses as
# the first run (it crashed with a segfault before).
# usage: damaged_index_cache.sh MOETRAIN CONFIG DATA_PREFIX
set -u
bin=$1 config=$2 data=$3
d=$(mktemp -d)
train() {  # $1: the run's name (save folder and log)
  "$bin" train "$config" --data-path "$data" --split 949,50,1 --train-iters 2 --num-layers 1 --hidden-size 16 \
    --num-attention-heads 2 --seq-length 16 --max-position-embeddings 16 --micro-batch-size 2 \
    --global-batch-size 4 --lr-warmup-iters 1 --eval-interval 2 --eval-iters 1 --log-interval 1 \
    --save "$d/$1" --data-cache-path "$d/cache" > "$d/$1.log" 2>&1
}
train first || { cat "$d/first.log"; echo "FAILED: the first run"; exit 1; }
files=0
for f in "$d"/cache/*_shuffle_idx.npy; do  # train, valid and test
  printf '\377\377\177\177' | dd of="$f" bs=1 seek=136 conv=notrunc 2>/dev/null
  files=$((files + 1))
done
train second
rc=$?
cat "$d/second.log"
named=$(grep -c "^moetrain: index cache file '$d/cache/[0-9a-f]*_shuffle_idx.npy' is damaged (its checksum [0-9a-f]* differs from the [0-9a-f]* in '.*\.dsc'): rebuilding it$" "$d/second.log")
grep -o 'loss [0-9.]*' "$d/first.log" > "$d/first.losses"
grep -o 'loss [0-9.]*' "$d/second.log" > "$d/second.losses"
if [ $rc -eq 0 ] && [ "$files" -eq 3 ] && [ "$named" -eq 3 ] && [ -s "$d/first.losses" ] &&
   cmp -s "$d/first.losses" "$d/second.losses"; then
  echo "each damaged index cache file named and rebuilt; the same $(wc -l < "$d/first.losses") losses"
  rm -rf "$d"
  exit 0
fi
echo "FAILED: exit code $rc, $files files damaged, $named named; losses:"
paste "$d/first.losses" "$d/second.losses"
exit 1
