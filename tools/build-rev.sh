#!/usr/bin/env bash
# Builds the moetrain program of another revision, for `moetrain bench compare --against` (A/B of a
# change on a machine whose speed drifts: docs/performance.md, "Comparing two builds").
#
#   tools/build-rev.sh REV     # e.g. HEAD~1, a tag, a commit
#
# REV is checked out into build-rev/<commit>/src (a git worktree, detached) and its moetrain built
# in build-rev/<commit>/build (Release, -march=native, CPU only, no tests; CMAKE_FLAGS in the
# environment are added, as `make build` takes them); the last line printed is the program's path.
# A revision built before is reused (on the CPU it was built on: -march=native). Remove them with
# `rm -rf build-rev && git worktree prune`.
set -euo pipefail

if [ $# -ne 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
  [ $# -eq 1 ] && exit 0 || exit 2
fi
root=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel 2> /dev/null) || {
  echo "build-rev.sh: needs git and a git checkout of moetrain; $(cd "$(dirname "$0")/.." && pwd) is not one" >&2
  exit 2
}
commit=$(git -C "$root" rev-parse --verify --quiet "$1^{commit}") || {
  echo "build-rev.sh: '$1' is not a revision of $root (a commit, a tag or a branch)" >&2
  exit 2
}
dir="$root/build-rev/$commit"
program="$dir/build/bin/moetrain"
mkdir -p "$dir"
exec 9> "$dir/.lock"
flock 9  # one build of a revision at a time; a second caller waits and reuses it

# the checkout: reused only if it is a worktree at that very commit (an interrupted `worktree add`
# or a folder removed by hand leaves something else, which is made anew, and built anew: the
# program reads its assets from there)
if [ "$(git -C "$dir/src" rev-parse HEAD 2> /dev/null || true)" != "$commit" ] ||
  [ ! -f "$dir/src/CMakeLists.txt" ]; then
  git -C "$root" worktree remove --force "$dir/src" > /dev/null 2>&1 || true
  rm -rf "$dir/src" "$dir/build"
  git -C "$root" worktree prune
  git -C "$root" worktree add --detach "$dir/src" "$commit" >&2
fi
# -march=native: a build is for the CPU it was made on (a folder kept across machines is rebuilt)
cpu=$( (grep -m1 '^model name' /proc/cpuinfo; grep -m1 '^flags' /proc/cpuinfo) 2> /dev/null | cksum | cut -d' ' -f1)
if [ -x "$program" ] && [ "$(cat "$dir/build/.built-for-cpu" 2> /dev/null || true)" != "$cpu" ]; then
  echo "build-rev.sh: $dir/build was made on another CPU; building it again" >&2
  rm -rf "$dir/build"
fi
if [ ! -x "$program" ]; then
  echo "build-rev.sh: building $commit in $dir/build (log: $dir/build.log)" >&2
  # shellcheck disable=SC2086  # CMAKE_FLAGS: several flags, split as make splits them
  if ! { cmake -S "$dir/src" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release -DMOETRAIN_CUDA=OFF \
    -DMOETRAIN_BUILD_TESTS=OFF ${CMAKE_FLAGS:-} &&
    cmake --build "$dir/build" -j "$(nproc)" --target moetrain; } > "$dir/build.log" 2>&1; then
    tail -20 "$dir/build.log" >&2
    echo "build-rev.sh: the build of $commit failed; its log: $dir/build.log" >&2
    exit 1
  fi
  echo "$cpu" > "$dir/build/.built-for-cpu"
fi
echo "$program"
