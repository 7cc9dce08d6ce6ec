#!/bin/bash
# The ported launch scripts of configs/megatron-deepspeed/ (issue 18) run as a user runs them, at
# CPU size (SIZE=cpu: the same flags, small numbers) under mpirun with 2 ranks: each MoE script
# trains to its train_tokens (6 iterations) and saves; the MoS student distils from the PR-MoE
# teacher the PR-MoE script just trained; the dense curriculum script trains by samples with the
# sequence-length curriculum; the 1.3B PR-MoE script trains with its DeepSpeed ZeRO-2 JSON (ZeRO
# stage 2: gradients and AdamW's state partitioned over the 2 ranks).
# usage: megatron_deepspeed_scripts.sh MOETRAIN SCRIPTS_DIR DATA_PREFIX MPIEXEC
set -u
bin=$1 dir=$2 data=$3 mpiexec=$4
out=$(mktemp -d)
export SIZE=cpu NUM_RANKS=2 MOETRAIN=$bin DATA_PATH=$data OUTPUT_BASEPATH=$out OMP_NUM_THREADS=1
export LAUNCHER="$mpiexec -np 2 --oversubscribe"
fail() { echo "FAILED: $1"; tail -n 30 "$out/run.log"; rm -rf "$out"; exit 1; }
run() {  # run SCRIPT: the script's exit status, its output in $out/run.log
  bash "$dir/$1" > "$out/run.log" 2>&1
}
for script in ds_pretrain_gpt_125M_MoE64.sh ds_pretrain_gpt_350M_MoE128.sh ds_pretrain_gpt_1.3B_MoE128.sh \
              ds_pretrain_gpt_350M_PR-MoE32or64.sh ds_pretrain_gpt_350M_PR-MoE32or64_MoS.sh \
              ds_pretrain_gpt_125M_dense_cl.sh; do
  run "$script" || fail "$script exited with an error"
  grep -q "saved checkpoint .*iter_0000006" "$out/run.log" || fail "$script did not train 6 iterations"
  grep -q "validation loss" "$out/run.log" || fail "$script did not evaluate"
  echo "$script: trained $(grep -c '^iteration .*tokens/s' "$out/run.log") logged iterations"
done
run ds_pretrain_gpt_350M_PR-MoE32or64_MoS.sh  # the student resumed: complete
grep -q "already complete" "$out/run.log" || fail "the MoS student's second run did not find its run complete"
bash "$dir/ds_pretrain_gpt_350M_PR-MoE32or64_MoS.sh" > /dev/null 2>&1
grep -q '"event":"kd_stopped"\|kd_loss' "$out/checkpoint/gpt-0.35B-PR-MoE-MoS-cpu/metrics.jsonl" ||
  fail "the MoS student logged no KD loss"
# min 16, max 64, 6 curriculum steps, multiples of 8: step 1 trains 24 tokens a sample, step 6 on 64
grep -q '"curriculum_seqlen":24' "$out/checkpoint/gpt3-0.125B-dense-cl-cpu/metrics.jsonl" &&
  grep -q '"curriculum_seqlen":64' "$out/checkpoint/gpt3-0.125B-dense-cl-cpu/metrics.jsonl" ||
  fail "the curriculum script did not go from 24 to 64 tokens a sample"
grep -q '"optimizer"' "$out/checkpoint/gpt3-0.125B-dense-cl-cpu/metrics.jsonl" ||
  fail "the curriculum script logged no optimizer states"
ls "$out/tensorboard/gpt-0.125B-MoE4-cpu/" | grep -q "events.out.tfevents" || fail "no TensorBoard event file"
run ds_pretrain_gpt_1.3B_PR-MoE64or128.sh || fail "the ZeRO-2 script exited with an error"
grep -q "ZeRO stage 2: AdamW's moments and the gradients partitioned" "$out/run.log" ||
  fail "the ZeRO-2 script did not run ZeRO stage 2"
grep -q "saved checkpoint .*iter_0000006" "$out/run.log" || fail "the ZeRO-2 script did not train 6 iterations"
echo "the ported launch scripts train"
rm -rf "$out"
