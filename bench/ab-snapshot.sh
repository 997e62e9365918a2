#!/usr/bin/env bash
# A built copy of one commit of this repository, for bench/ab-router.ts, without touching the
# work tree or .git (git archive only reads): ${TMPDIR:-/tmp}/amqp-mesh-ab/<short-commit>, with
# this tree's node_modules linked in and dist/ compiled. Prints the directory on the last line.
#
#   bash bench/ab-snapshot.sh HEAD                 # the last commit, whatever the work tree holds
#   node dist/bench/ab-router.js /work/wt-base "$(bash bench/ab-snapshot.sh HEAD | tail -1)"
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rev="$(git -C "$here" rev-parse --short "${1:?usage: ab-snapshot.sh COMMIT}")"
out="${TMPDIR:-/tmp}/amqp-mesh-ab/$rev"
if [ ! -f "$out/.built" ]; then
  rm -rf "$out"
  mkdir -p "$out"
  git -C "$here" archive "$rev" | tar -x -C "$out"
  ln -s "$here/node_modules" "$out/node_modules"
  # tsc emits even with type errors (e.g. a bench file a later commit fixed): warn, go on if the router is there.
  if ! (cd "$out" && "$here/node_modules/.bin/tsc" -p tsconfig.json) >&2; then
    echo "ab-snapshot.sh: tsc reported errors in $rev (output emitted anyway)" >&2
  fi
  [ -n "$(find "$out/dist/router" -name '*.js' -print -quit 2>/dev/null)" ] || { echo "ab-snapshot.sh: $rev: no dist/router after tsc" >&2; exit 1; }
  touch "$out/.built"
fi
echo "$out"
