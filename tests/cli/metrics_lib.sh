# Shell helpers shared by the CLI tests that compare training runs (source it).
# metrics_values FILE...: every lm_loss and grad_norm logged in the metrics files, one per line, in order.
metrics_values() { cat "$@" | grep -o '"\(lm_loss\|grad_norm\)":[-0-9.e+]*' | cut -d: -f2; }
# metrics_losses FILE...: the training lines' lm_loss only.
metrics_losses() { cat "$@" | grep '"split":"train"' | grep -o '"lm_loss":[-0-9.e+]*' | cut -d: -f2; }
# metrics_diagnostics FILE...: the MoE layers' dropped fractions and balancing losses, and the router
# diagnostics (interference, drop cost and its sample size) where logged, in order.
metrics_diagnostics() {
  cat "$@" | grep -o '"\(dropped\|aux_loss\|interference\|drop_cost\|drop_cost_tokens\)":[-0-9.e+]*' | cut -d: -f2
}
# same_values A B COUNT TOL [abs]: prints "yes" when files A and B hold COUNT lines each, pairwise
# equal within TOL relative (absolute with "abs") (an empty line, fp16's skipped step without a norm, matches only another).
same_values() {
  paste "$1" "$2" | awk -v want="$3" -v tol="$4" -v absolute="$([ "${5:-}" = abs ] && echo 1 || echo 0)" 'BEGIN { ok = 1; n = 0 }
    { n++; if ($1 == "" && $2 == "") next; if ($1 == "" || $2 == "") { ok = 0; next }
      r = ($1 - $2) / (absolute || $1 == 0 ? 1 : ($1 > 0 ? $1 : -$1)); if (r < 0) r = -r; if (r > tol) ok = 0 }
    END { print (ok && n == want) ? "yes" : "no" }'
}
