#!/bin/sh
# The example sweep (configs/sweeps/tiny-moe-capacity.yaml: capacity factor x experts, 6 runs)
# end to end, as a user runs it from a working folder with data/ and assets/, shortened to 4
# iterations a run: --dry-run lists the 6 runs, --emit list and --emit slurm write their commands,
# one run interrupted at iteration 2 is resumed by --run while the others start, a second --run
# skips all 6, --collect tabulates them (zero-shot metrics included), and report draws one.
# usage: sweep_example.sh MOETRAIN SOURCE_DIR DATA_PREFIX
set -eu
bin=$1 src=$2 data=$3
d=$(mktemp -d)
cd "$d"
mkdir data
ln -s "$data.bin" data/tinyshakespeare_text_document.bin
ln -s "$data.idx" data/tinyshakespeare_text_document.idx
ln -s "$src/assets" assets
sed -e "s|base: ../tiny-moe.yaml|base: $src/configs/tiny-moe.yaml|" -e 's/train_iters: 100/train_iters: 4/' \
  -e 's/lr_warmup_iters: 10/lr_warmup_iters: 1/' -e 's/eval_interval: 50/eval_interval: 2/' \
  -e 's/save_interval: 50/save_interval: 2/' -e 's/log_interval: 10/log_interval: 1/' \
  -e 's/eval_tasks_limit: 50/eval_tasks_limit: 5/' "$src/configs/sweeps/tiny-moe-capacity.yaml" > capacity.yaml
"$bin" sweep capacity.yaml --dry-run > dry.txt
test "$(grep -c 'not started' dry.txt)" -eq 6
"$bin" sweep capacity.yaml --emit list > list.txt
test "$(grep -c ' train ' list.txt)" -eq 6
"$bin" sweep capacity.yaml --emit slurm
grep -q -- '--array=0-5' runs/sweeps/capacity/sweep.slurm
# run 0 trained by hand and stopped at iteration 2: interrupted
"$bin" train runs/sweeps/capacity/cf0.5-e4/sweep_config.yaml --exit-interval 2 > first.log 2>&1
"$bin" sweep capacity.yaml --dry-run | grep -q 'cf0.5-e4 *interrupted'
"$bin" sweep capacity.yaml --run > run1.txt
cat run1.txt
test "$(grep -c 'resuming' run1.txt)" -eq 1
test "$(grep -c 'starting' run1.txt)" -eq 5
grep -q "resumed from .*iter_0000002 at iteration 2" runs/sweeps/capacity/cf0.5-e4/train.log
"$bin" sweep capacity.yaml --run > run2.txt
test "$(grep -c 'finished, skipped' run2.txt)" -eq 6
"$bin" sweep --collect runs/sweeps/capacity > table.txt
cat table.txt
test "$(grep -c '| finished |$' table.txt)" -eq 6
grep -q '^| run | moe_train_capacity_factor | num_experts | iteration | train_loss | valid_loss | lambada_acc' table.txt
test -f runs/sweeps/capacity/summary.csv
"$bin" report runs/sweeps/capacity/cf1.0-e8 --compare runs/sweeps/capacity/cf0.5-e8
grep -q 'class="heatmap"' runs/sweeps/capacity/cf1.0-e8/report.html
echo "the example sweep ran end to end"
cd /
rm -rf "$d"
