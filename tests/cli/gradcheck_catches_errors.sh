#!/bin/sh
# `moetrain gradcheck` as a tool must catch what it exists for: a deliberately broken backward
# (the test-only --break-backward switch) fails with the broken tensors marked and exit status 1;
# a probe step large enough to flip routing decisions skips those entries and says so.
# usage: gradcheck_catches_errors.sh MOETRAIN CONFIG_DIR
set -u
bin=$1 configs=$2
d=$(mktemp -d)
for op in combine gate_weights; do
  "$bin" gradcheck "$configs/tiny-pr-moe.yaml" --params 'layers.3.mlp.gate.*' --samples 3 --break-backward $op \
    > "$d/broken.txt" 2>&1
  rc=$?
  cat "$d/broken.txt"
  if [ $rc -ne 1 ]; then echo "broken $op: exit status $rc, expected 1"; exit 1; fi
  grep -q '^layers.3.mlp.gate.weight .*<-- FAILED$' "$d/broken.txt" || { echo "broken $op: not flagged"; exit 1; }
  grep -q '^FAILED: ' "$d/broken.txt" || { echo "broken $op: no verdict"; exit 1; }
done
"$bin" gradcheck "$configs/tiny-moe.yaml" --params '*gate*' --samples 8 --eps 0.3 --tolerance 1 > "$d/flip.txt" 2>&1 ||
  { cat "$d/flip.txt"; echo "large-step run failed"; exit 1; }
cat "$d/flip.txt"
skipped=$(sed -n 's/.* \([0-9][0-9]*\) skipped (a routing decision would flip).*/\1/p' "$d/flip.txt")
if [ -z "$skipped" ] || [ "$skipped" -eq 0 ]; then echo "no flipped routing reported"; exit 1; fi
rm -rf "$d"
echo "gradcheck catches a broken backward and skips flipped routing ($skipped entries)"
