#!/usr/bin/env bash
# Build the qpid-jms test client (JmsClient) into a runnable jar with its dependencies.
#
#   bash test/support/jms/build.sh [OUT_DIR]     (default: ${TMPDIR:-/tmp}/amqp-mesh-jms)
#
# Output: OUT_DIR/jms-client.jar, whose manifest puts OUT_DIR/lib/*.jar (qpid-jms-client and its
# dependencies, copied by maven-dependency-plugin) on the class path: `java -jar OUT_DIR/jms-client.jar`.
# Prints the jar's path on the last line of stdout.
#
# A no-op (well under a second, no Maven, no network) when the jar was built from the same pom.xml
# and sources: a sha256 of them is kept in OUT_DIR/.stamp. The first build downloads the Maven
# plugins and qpid-jms-client from Maven Central into ~/.m2 (about 30 s cold here); later builds of
# changed sources work offline from ~/.m2. Concurrent callers are serialised with flock.
# Needs: mvn (Debian: maven) and a JDK 17 (openjdk-17-jdk-headless); scripts/ensure-system.sh
# installs them when missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-${TMPDIR:-/tmp}/amqp-mesh-jms}"
jar="$out/jms-client.jar"

die() { echo "test/support/jms/build.sh: $*" >&2; exit 1; }

mkdir -p "$out"
out="$(cd "$out" && pwd)"
jar="$out/jms-client.jar"

stamp_of() {
  (cd "$here" && find pom.xml src -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
}

exec 9>"$out/.lock"
flock -w 600 9 || die "timed out waiting for another build (lock $out/.lock)"

want="$(stamp_of)"
if [ -f "$jar" ] && [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$want" ]; then
  echo "$jar"
  exit 0
fi

command -v mvn >/dev/null 2>&1 || die "mvn not found (apt-get install maven, or run: bash scripts/ensure-system.sh)"
command -v javac >/dev/null 2>&1 || die "javac not found (apt-get install openjdk-17-jdk-headless, or run: bash scripts/ensure-system.sh)"

rm -f "$out/.stamp"
rm -rf "$out/lib" "$out/classes"
log="$out/build.log"
started=$(date +%s)
# -Djms.out moves Maven's build directory (target/) out of the work tree.
if ! mvn -B -ntp -f "$here/pom.xml" "-Djms.out=$out" package >"$log" 2>&1; then
  tail -n 60 "$log" >&2
  die "mvn package failed (full log: $log)"
fi
[ -f "$jar" ] || die "mvn package did not produce $jar (log: $log)"
echo "$want" >"$out/.stamp"
echo "built $jar in $(( $(date +%s) - started )) s (log: $log)" >&2
echo "$jar"
