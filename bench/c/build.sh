#!/usr/bin/env bash
# Build the C load generator(s) of the benchmark.
#
#   bash bench/c/build.sh [OUT_DIR]     (default: ${TMPDIR:-/tmp}/amqp-mesh-bench)
#
# Prints the path of the built mesh_perf binary on the last line of stdout.
# Needs gcc and the Qpid Proton-C headers/library (Debian: libqpid-proton11-dev,
# which ships one pkg-config module, libqpid-proton; upstream builds ship
# libqpid-proton-core + libqpid-proton-proactor instead; both are handled).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-${TMPDIR:-/tmp}/amqp-mesh-bench}"

die() { echo "bench/c/build.sh: $*" >&2; exit 1; }

cc="${CC:-gcc}"
command -v "$cc" >/dev/null 2>&1 || die "C compiler '$cc' not found (apt-get install gcc)"

flags=""
if command -v pkg-config >/dev/null 2>&1; then
  if pkg-config --exists libqpid-proton-core libqpid-proton-proactor 2>/dev/null; then
    flags="$(pkg-config --cflags --libs libqpid-proton-core libqpid-proton-proactor)"
  elif pkg-config --exists libqpid-proton 2>/dev/null; then
    flags="$(pkg-config --cflags --libs libqpid-proton)"
  fi
fi
if [ -z "$flags" ]; then
  # no pkg-config data: fall back to the default include/library paths
  if echo '#include <proton/proactor.h>' | "$cc" -E -x c - >/dev/null 2>&1; then
    flags="-lqpid-proton"
  else
    die "Qpid Proton-C headers not found (proton/proactor.h). Install them with: apt-get install libqpid-proton11-dev pkg-config"
  fi
fi
echo '#include <proton/proactor.h>' | "$cc" -E -x c - $flags >/dev/null 2>&1 \
  || die "Qpid Proton-C headers not found (proton/proactor.h). Install them with: apt-get install libqpid-proton11-dev pkg-config"

mkdir -p "$out"
bin="$out/mesh_perf"
src="$here/mesh_perf.c"
# rebuild only when the source changed
if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ] || [ "${FORCE_BUILD:-}" = 1 ]; then
  # shellcheck disable=SC2086
  "$cc" -O2 -g -Wall -Wextra -std=gnu11 -o "$bin.tmp.$$" "$src" $flags -lpthread \
    || die "compiling $src failed"
  mv -f "$bin.tmp.$$" "$bin"
fi
echo "$bin"
