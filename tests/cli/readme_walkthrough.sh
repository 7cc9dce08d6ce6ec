#!/usr/bin/env bash
# README.md followed as written: every ```sh / ```bash block, in order, each command run by bash
# from one fresh working folder laid out like the repository (assets/, tests/data/, data/, configs/
# as in the source, build/bin/moetrain), so later commands use what earlier ones made, as a
# reader's do. A block whose info string says skip-test (```sh skip-test) is not run: make
# targets, cluster scripts, files a reader brings. Shortened so that the whole page takes a few
# minutes on 2 cores, and nothing else is changed:
#   - the copied configs/tiny-*.yaml and configs/sweeps/*.yaml train 4 iterations of 4 samples
#     (micro-batch 2), evaluate and save every 2, use 1 validation batch and 5 task documents,
#     and tiny-mos stops distilling at iteration 3;
#   - build/bin/moetrain there is a wrapper that appends --train-iters 4 to `train` (6 when the
#     command resumes with --load, so the resumed run trains 2 more, with
#     --override-opt_param-scheduler for the longer schedule), --limit 5 to `eval`,
#     --max-new-tokens 10 to `generate`, --quick to `bench` (and --iters 1 to `bench train`) and
#     --samples 1 to `gradcheck`;
#   - `mpirun` is a wrapper that adds --oversubscribe (the Open MPI settings for root and
#     sandboxes come from the test's environment);
#   - every process runs one OpenMP thread (OMP_NUM_THREADS=1): next to other tests on 2 cores,
#     spinning OpenMP threads made the same commands 4x slower.
# Fails naming the first command that failed, with the end of its output.
# usage: readme_walkthrough.sh MOETRAIN SOURCE_DIR MPIEXEC
set -euo pipefail
bin=$1 src=$2 mpiexec=$3
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT

# --- the working folder
ln -s "$src/assets" "$w/assets"
# data/ exists in a checkout (the data library's sources; the README writes its datasets there)
mkdir -p "$w/data" "$w/tests" "$w/build/bin" "$w/.shim"
ln -s "$src/tests/data" "$w/tests/data"
cp -rL "$src/configs" "$w/configs"  # a real copy (-L: never a link to the source): it is edited below
test ! -L "$w/configs"
for f in "$w"/configs/tiny-*.yaml "$w"/configs/sweeps/*.yaml; do
  sed -E -i -e 's/^( *)train_iters: .*/\1train_iters: 4/' -e 's/^( *)micro_batch_size: .*/\1micro_batch_size: 2/' \
    -e 's/^( *)global_batch_size: .*/\1global_batch_size: 4/' -e 's/^( *)lr_warmup_iters: .*/\1lr_warmup_iters: 1/' \
    -e 's/^( *)eval_interval: .*/\1eval_interval: 2/' -e 's/^( *)eval_iters: .*/\1eval_iters: 1/' \
    -e 's/^( *)save_interval: .*/\1save_interval: 2/' -e 's/^( *)log_interval: .*/\1log_interval: 1/' \
    -e 's/^( *)eval_tasks_limit: .*/\1eval_tasks_limit: 5/' -e 's/^( *)kd_stop_step: .*/\1kd_stop_step: 3/' "$f"
done
cat > "$w/build/bin/moetrain" << EOF
#!/usr/bin/env bash
case "\${1:-}" in
  train) for a in "\$@"; do [ "\$a" = --load ] && exec "$bin" "\$@" --train-iters 6 --override-opt_param-scheduler; done
         exec "$bin" "\$@" --train-iters 4 ;;
  eval) exec "$bin" "\$@" --limit 5 ;;
  generate) exec "$bin" "\$@" --max-new-tokens 10 ;;
  bench) [ "\${2:-}" = train ] && exec "$bin" "\$@" --quick --iters 1
         exec "$bin" "\$@" --quick ;;
  gradcheck) exec "$bin" "\$@" --samples 1 ;;
  *) exec "$bin" "\$@" ;;
esac
EOF
cat > "$w/.shim/mpirun" << EOF
#!/usr/bin/env bash
for a in "\$@"; do [ "\$a" = --oversubscribe ] && exec "$mpiexec" "\$@"; done
exec "$mpiexec" --oversubscribe "\$@"
EOF
chmod +x "$w/build/bin/moetrain" "$w/.shim/mpirun"
export PATH="$w/.shim:$PATH" OMP_NUM_THREADS=1

# --- the commands: one per line of a runnable block (continuation lines joined, comment lines
# skipped), each written to .commands/NNNN as its README line number and its text
mkdir "$w/.commands"
awk -v dir="$w/.commands" '
  /^```/ {
    if (!inblock) {
      info = substr($0, 4); inblock = 1
      run = (info ~ /^(sh|bash)([ \t]|$)/) && (info !~ /skip-test/)
    } else inblock = 0
    next
  }
  inblock && run {
    if (cmd != "") cmd = cmd "\n" $0; else { cmd = $0; start = NR }
    if ($0 ~ /\\$/) next
    if (cmd !~ /^[ \t]*(#|$)/) { f = sprintf("%s/%04d", dir, ++n); print start > f; print cmd > f; close(f) }
    cmd = ""
  }' "$src/README.md"

cd "$w"
n=0
t0=$(date +%s)
for f in "$w"/.commands/*; do
  [ -f "$f" ] || continue
  n=$((n + 1))
  line=$(head -1 "$f")
  cmd=$(tail -n +2 "$f")
  s=$(date +%s)
  if ! bash -o pipefail -c "$cmd" > "$w/.out" 2>&1; then
    echo "README.md line $line: this command failed:"
    echo "$cmd"
    echo "--- the end of its output:"
    tail -25 "$w/.out"
    exit 1
  fi
  printf '[%3ss] README.md:%s: %s\n' "$(($(date +%s) - s))" "$line" "$(head -2 "$f" | tail -1)"
done
test "$n" -gt 0 || { echo "no command found in $src/README.md"; exit 1; }
echo "all $n README commands succeeded in $(($(date +%s) - t0)) s"
