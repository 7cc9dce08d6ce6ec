#!/usr/bin/env bash
# Builds the moetrain program of another revision, for `moetrain bench compare --against` (A/B of a
# change on a machine whose speed drifts: docs/performance.md, "Comparing two builds").
#
#   tools/build-rev.sh REV     # e.g. HEAD~1, a tag, a commit
#
# REV is checked out into build-rev/<commit>/src (a git worktree, detached) and built in
# build-rev/<commit>/build as `make build` builds (Release, -march=native, CPU only); the last line
# printed is the program's path. A revision built before is reused. Remove them with
# `git worktree remove --force build-rev/<commit>/src && rm -rf build-rev/<commit>` (or all of
# build-rev/, then `git worktree prune`).
set -euo pipefail

if [ $# -ne 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
  [ $# -eq 1 ] && exit 0 || exit 2
fi
root=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
commit=$(git -C "$root" rev-parse --verify --quiet "$1^{commit}") || {
  echo "build-rev.sh: '$1' is not a revision of $root (a commit, a tag or a branch)" >&2
  exit 2
}
dir="$root/build-rev/$commit"
program="$dir/build/bin/moetrain"
if [ ! -x "$program" ]; then
  if [ ! -d "$dir/src" ]; then
    mkdir -p "$dir"
    git -C "$root" worktree add --detach "$dir/src" "$commit" >&2
  fi
  echo "build-rev.sh: building $commit in $dir/build (log: $dir/build.log)" >&2
  if ! { cmake -S "$dir/src" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release -DMOETRAIN_CUDA=OFF &&
    cmake --build "$dir/build" -j "$(nproc)" --target moetrain; } > "$dir/build.log" 2>&1; then
    tail -20 "$dir/build.log" >&2
    echo "build-rev.sh: the build of $commit failed; its log: $dir/build.log" >&2
    exit 1
  fi
fi
echo "$program"
