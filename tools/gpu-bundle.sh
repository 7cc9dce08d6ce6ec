#!/usr/bin/env bash
# Prepares a build for a lent GPU machine, whose image has CUDA but not this project's Debian
# libraries and cannot install any: configures BUILD_DIR with CUDA for sm_90 and no -march=native
# (the GPU host's CPU may differ), builds `moetrain` and `moetrain_cuda_tests`, and copies the
# shared libraries they need that such an image lacks (OpenBLAS, yaml-cpp, utf8proc, Open MPI
# and their dependencies; not libc/libstdc++/CUDA) with the two programs into BUNDLE_DIR (bin/,
# lib/): about 50 MB, under the 64 MiB a device call may carry. tools/gpu-check.sh BUNDLE_DIR
# runs it.
#   tools/gpu-bundle.sh [BUILD_DIR] [BUNDLE_DIR]     (defaults build-gpu, gpu-bundle)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-gpu}
bundle=${2:-gpu-bundle}
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DMOETRAIN_CUDA=ON -DMOETRAIN_NATIVE=OFF \
    -DCMAKE_CUDA_ARCHITECTURES=90 > "$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
fi
cmake --build "$build" -j "$(nproc)" --target moetrain moetrain_cuda_tests
rm -rf "$bundle"
mkdir -p "$bundle/bin" "$bundle/lib"
cp "$build/bin/moetrain" "$build/bin/moetrain_cuda_tests" "$bundle/bin/"
ldd "$build/bin/moetrain" "$build/bin/moetrain_cuda_tests" | awk '/=>/ {print $3}' | sort -u |
  grep -vE 'libc\.so|libm\.so|libpthread|libdl\.|librt\.|ld-linux|libgcc_s|libstdc\+\+|/cuda/' |
  while read -r lib; do cp -L "$lib" "$bundle/lib/"; done
echo "moetrain GPU bundle, $(git rev-parse --short HEAD 2>/dev/null || echo '?'), built $(date -u +%FT%TZ)" > "$bundle/BUNDLE"
echo "bundle: $bundle ($(du -sh "$bundle" | cut -f1)): carry it and run tools/gpu-check.sh $bundle"
