#!/usr/bin/env bash
# The GPU check (issue #10): on a machine with an NVIDIA GPU, build moetrain with the CUDA
# backend (or reuse a build folder compiled elsewhere for sm_90 and carried along), run the CUDA
# tests against the CPU backend, and write a summary. Meant for one short call on a lent H200:
#   tools/gpu-check.sh [BUILD_DIR | BUNDLE_DIR]   (default build-gpu; summary in $OUT/gpu-check.txt, or that folder)
# Exit status: 0 when every CUDA test passed, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-gpu}
out=${OUT:-$build}
mkdir -p "$out"
summary="$out/gpu-check.txt"
log() { echo "$*" | tee -a "$summary"; }
: > "$summary"
log "== gpu-check $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv,noheader 2>&1 | sed 's/^/gpu: /' | tee -a "$summary"
start=$(date +%s)
if [ -f "$build/BUNDLE" ]; then  # prepared by tools/gpu-bundle.sh: the programs and their libraries
  export LD_LIBRARY_PATH="$(cd "$build" && pwd)/lib:${LD_LIBRARY_PATH:-}"
  log "using the bundle: $(cat "$build/BUNDLE")"
elif [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DMOETRAIN_CUDA=ON -DMOETRAIN_NATIVE=OFF \
    -DCMAKE_CUDA_ARCHITECTURES=90 > "$out/configure.log" 2>&1 || { log "configure FAILED"; tail -20 "$out/configure.log"; exit 1; }
fi
if [ ! -f "$build/BUNDLE" ]; then
  cmake --build "$build" -j "$(nproc)" --target moetrain moetrain_cuda_tests > "$out/build.log" 2>&1 ||
    { log "build FAILED"; tail -30 "$out/build.log" | tee -a "$summary"; exit 1; }
fi
log "build: $(( $(date +%s) - start )) s"
"$build/bin/moetrain_cuda_tests" --reporter compact > "$out/cuda-tests.log" 2>&1
rc=$?
tail -5 "$out/cuda-tests.log" | tee -a "$summary"
if [ $rc -eq 0 ]; then log "cuda tests: PASSED"; else log "cuda tests: FAILED (exit $rc; $out/cuda-tests.log)"; fi

# A short tiny-moe training on the GPU against the CPU: the same 10 losses within 1e-3 relative.
. tests/cli/metrics_lib.sh
train_flags=(--data-path tests/data/megatron_sample/my-gpt2_text_document --split 949,50,1 --num-layers 2
  --hidden-size 64 --num-attention-heads 2 --seq-length 64 --max-position-embeddings 64 --micro-batch-size 4
  --global-batch-size 8 --train-iters 10 --lr-warmup-iters 2 --log-interval 1 --eval-interval 10 --eval-iters 1
  --save "" --data-cache-path "$out/cache")
for dev in cpu cuda; do
  t0=$(date +%s)
  "$build/bin/moetrain" train configs/tiny-moe.yaml "${train_flags[@]}" --device "$dev" \
    --metrics-file "$out/train-$dev.jsonl" > "$out/train-$dev.log" 2>&1 ||
    log "training on $dev FAILED: $(grep -m1 'error:' "$out/train-$dev.log" || tail -1 "$out/train-$dev.log")"
  log "train $dev: $(( $(date +%s) - t0 )) s; $(grep '^iteration *10/10' "$out/train-$dev.log" | cut -c1-100)"
done
metrics_values "$out/train-cpu.jsonl" > "$out/loss-cpu.txt"
metrics_values "$out/train-cuda.jsonl" > "$out/loss-cuda.txt" 2>/dev/null
if [ "$(same_values "$out/loss-cpu.txt" "$out/loss-cuda.txt" 21 1e-3)" = yes ]; then
  log "training: the GPU's 10 losses, gradient norms and validation loss equal the CPU's within 1e-3"
else
  log "training: GPU and CPU curves DIFFER (or a run failed): $out/loss-cpu.txt vs $out/loss-cuda.txt"; rc=1
fi
# bf16 on the GPU against fp32 on the CPU: 16-bit GEMM operands keep every loss within 2%.
t0=$(date +%s)
"$build/bin/moetrain" train configs/tiny-moe.yaml "${train_flags[@]}" --device cuda --precision bf16 \
  --metrics-file "$out/train-cuda-bf16.jsonl" > "$out/train-cuda-bf16.log" 2>&1 ||
  log "bf16 training on cuda FAILED: $(grep -m1 'error:' "$out/train-cuda-bf16.log" || tail -1 "$out/train-cuda-bf16.log")"
log "train cuda bf16: $(( $(date +%s) - t0 )) s; $(grep '^iteration *10/10' "$out/train-cuda-bf16.log" | cut -c1-100)"
metrics_losses "$out/train-cuda-bf16.jsonl" > "$out/loss-cuda-bf16.txt" 2>/dev/null
metrics_losses "$out/train-cpu.jsonl" > "$out/loss-cpu-only.txt"
if [ "$(same_values "$out/loss-cpu-only.txt" "$out/loss-cuda-bf16.txt" 10 2e-2)" = yes ]; then
  log "training bf16: the GPU's 10 losses are within 2% of the CPU's fp32 losses"
else
  log "training bf16: DIFFERS from fp32 by more than 2% (or failed): $out/loss-cuda-bf16.txt"; rc=1
fi

# Throughput on the GPU (bf16): a GPT-2 small sized dense model and its MoE twin, each with the
# GPU's own bf16 GEMM as the reference (docs/performance.md). Bounded in time: these are figures,
# not pass/fail checks.
bench_flags=(--device cuda --precision bf16 --num-layers 12 --hidden-size 768 --num-attention-heads 12
  --seq-length 1024 --micro-batch-size 4 --iters 3)
for shape in dense moe; do
  extra=(); [ "$shape" = moe ] && extra=(--num-experts 8)
  timeout 150 "$build/bin/moetrain" bench train "${bench_flags[@]}" "${extra[@]}" > "$out/bench-$shape.txt" 2>&1 ||
    log "bench $shape: did not finish (timeout or error): $(tail -1 "$out/bench-$shape.txt")"
  sed "s/^/bench $shape: /" "$out/bench-$shape.txt" | tee -a "$summary" > /dev/null
done
log "total: $(( $(date +%s) - start )) s"
exit $(( rc == 0 ? 0 : 1 ))
