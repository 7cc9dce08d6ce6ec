#!/usr/bin/env bash
# Installs the Debian packages that building and testing moetrain need, and only those that are
# missing: silent and instant when everything is present. Run as root (or with sudo available).
#
#   tools/bootstrap.sh            install what is missing
#   tools/bootstrap.sh --check    list what is missing, install nothing (exit 1 if anything is)
set -euo pipefail

packages=(
  cmake g++ make pkg-config        # toolchain
  libopenblas-openmp-dev           # CBLAS, the OpenMP build (runs serially inside our OpenMP loops)
  libdnnl-dev                      # oneDNN: bf16 GEMMs on AMX / AVX512-BF16 (runtime/cpu/gemm_bf16.h)
  ocl-icd-opencl-dev               # OpenCL headers + loader: Debian's oneDNN CMake config requires them
  libopenmpi-dev openmpi-bin       # MPI: collectives on CPU, bootstrap of NCCL on GPU
  libyaml-cpp-dev                  # YAML configs
  libutf8proc-dev                  # Unicode classes for the GPT-2 pre-tokenizer
  nlohmann-json3-dev               # JSON: vocabularies, JSONL corpora, test vectors
  catch2 libeigen3-dev             # tests: Catch2 v2 and the Eigen reference for forward math
)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "bootstrap: not a Debian system; install the equivalents of: ${packages[*]}" >&2
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "${1:-}" = "--check" ]; then
  echo "bootstrap: missing packages: ${missing[*]}"
  exit 1
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
  else
    echo "bootstrap: missing packages (${missing[*]}); run as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

echo "bootstrap: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# Never remove a user's packages to make room (libopenblas-openmp-dev conflicts with the reference
# libblas-dev/liblapack-dev): simulate first and stop with an explanation if apt would remove any.
removals=$($sudo apt-get install -s --no-install-recommends "${missing[@]}" 2>/dev/null | awk '/^Remv /{print $2}')
if [ -n "$removals" ]; then
  echo "bootstrap: installing ${missing[*]} would remove: $removals" >&2
  echo "bootstrap: remove or replace those yourself, or build against another CBLAS with" >&2
  echo "           make CMAKE_FLAGS=-DMOETRAIN_BLAS_DIR=<folder with libopenblas.so or libblas.so>" >&2
  exit 1
fi
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "bootstrap: done"
