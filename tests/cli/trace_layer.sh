#!/bin/sh
# `moetrain trace` on the PR-MoE config: the text layout has the forward and backward sections,
# --json holds every named tensor with the routing, and a dense layer is refused with the list
# of MoE layers.
# usage: trace_layer.sh MOETRAIN CONFIG
set -eu
bin=$1 config=$2
d=$(mktemp -d)
"$bin" trace "$config" --layer 2 --tokens 2 --text "To be, or not to be, that is the question" > "$d/trace.txt"
cat "$d/trace.txt"
for want in '^MoE layer 2 of 4 (residual)' '^tokens: \[0\]' 'capacity [0-9]* per expert' '^  l_aux = ' \
  'choice 1 .*expert [0-9]' 'residual mix' '^backward' 'd probs via l_aux' 'd gate logits' \
  'layers.1.mlp.experts.0.dense_h_to_4h.weight' 'layers.1.mlp.coefficient.weight'; do
  grep -q "$want" "$d/trace.txt" || { echo "trace lacks: $want"; exit 1; }
done
"$bin" trace "$config" --layer 4 --json > "$d/trace.json"
for key in '"gate_logits"' '"gate_probs.to_l_aux"' '"combine_weights"' '"expert_inputs"' '"expert_outputs"' \
  '"routing"' '"slot"' '"weight_grads"' '"layers.3.mlp.gate.weight"'; do
  grep -q "$key" "$d/trace.json" || { echo "json lacks $key"; exit 1; }
done
if "$bin" trace "$config" --layer 1 > "$d/dense.txt" 2>&1; then echo "a dense layer was traced"; exit 1; fi
grep -q "the MoE layers of this model are 2, 4" "$d/dense.txt" || { cat "$d/dense.txt"; exit 1; }
rm -rf "$d"
echo "trace prints the layer's forward and backward"
